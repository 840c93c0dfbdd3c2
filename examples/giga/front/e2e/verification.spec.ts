import { expect, logIn, logOut, newUser, signUp, test, verifyByLink } from './fixtures';

// Only with optional verification: a new account is logged in at once and
// verifies later (mandatory verifies in accounts.spec.ts; none sends no mail).
test('the mailed link verifies the address', async ({ page, mail }) => {
	const user = newUser('vera');
	await signUp(page, user);
	await expect(page.getByTestId('me-email-state')).toHaveText('(not verified)');
	const link = await mail.link(user.email, '/verify/');
	await logOut(page);

	// Opened, as a mail scanner or a link preview would, the link verifies nothing.
	await page.goto(new URL(link).pathname, { waitUntil: 'networkidle' });
	await expect(page.getByRole('button', { name: 'Verify my address' })).toBeVisible();
	await logIn(page, user);
	await expect(page.getByTestId('me-email-state')).toHaveText('(not verified)');
	await logOut(page);

	await verifyByLink(page, link);
	await expect(page.getByTestId('verify-result')).toHaveText(
		`Your email address ${user.email} is verified.`
	);
	await logIn(page, user);
	await expect(page.getByTestId('me-email-state')).toHaveText('(verified)');

	// The link worked once.
	await verifyByLink(page, link);
	await expect(page.getByTestId('verify-result')).toHaveText(
		'This verification link is invalid, already used or expired. Ask for a new one.'
	);
});
