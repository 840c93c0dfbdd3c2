import { expect, logIn, logOut, newUser, signUp, test, verifyByLink } from './fixtures';

test('sign up, log in, see /me, log out', async ({ page, mail, emailVerification }) => {
	const user = newUser('ada');
	await signUp(page, user);
	if (emailVerification === 'mandatory') {
		// No session until the address is verified, through the link mailed to it.
		await expect(page).toHaveURL(/\/login\?verify=1$/);
		await verifyByLink(page, await mail.link(user.email, '/verify/'));
		await expect(page.getByTestId('verify-result')).toHaveText(
			`Your email address ${user.email} is verified.`
		);
	} else {
		// Logged in at once.
		await expect(page).toHaveURL(/\/me$/);
		await expect(page.getByTestId('me-username')).toHaveText(user.username);
		await logOut(page);
	}

	await page.goto('/me');
	await expect(page).toHaveURL(/\/login\?next=%2Fme$/);
	await logIn(page, user);
	await expect(page).toHaveURL(/\/me$/);
	await expect(page.getByTestId('me-username')).toHaveText(user.username);
	await expect(page.getByTestId('me-email')).toHaveText(user.email);
	const session = (await page.context().cookies()).find((c) => c.name === 'session');
	expect(session?.httpOnly, 'the session cookie is out of reach of scripts').toBe(true);
	expect(await page.evaluate(() => Object.keys(localStorage)), 'no token in localStorage').toEqual(
		[]
	);

	await logOut(page);
	await page.goto('/me');
	await expect(page).toHaveURL(/\/login\?next=%2Fme$/);
});
