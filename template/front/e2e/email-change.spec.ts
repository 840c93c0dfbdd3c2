import { expect, newUser, signUpAndLogIn, test, verifyByLink } from './fixtures';

test('change the email address', async ({ page, mail, emailVerification }) => {
	const user = newUser('emil');
	await signUpAndLogIn(page, user, mail, emailVerification);
	const email = `new-${user.email}`;

	await page.goto('/account', { waitUntil: 'networkidle' });
	await page.getByLabel('New email').fill(email);
	await page.getByLabel('Current password').fill(user.password);
	await page.getByRole('button', { name: 'Change email' }).click();
	await expect(page).toHaveURL(/\/account\?done=/);

	if (emailVerification === 'none') {
		// Nothing to verify: the new address replaces the old at once.
		await expect(page.getByRole('status')).toHaveText('Your email address was changed.');
		await expect(page.getByTestId('account-email')).toHaveText(email);
	} else {
		// The old address stays until the link mailed to the new one is followed.
		await expect(page.getByRole('status')).toHaveText(
			'We mailed a link to the new address. Your address changes when you follow it.'
		);
		await expect(page.getByTestId('account-email')).toHaveText(user.email);
		await verifyByLink(page, await mail.link(email, '/verify/'));
		await expect(page.getByTestId('verify-result')).toHaveText(
			`Your email address ${email} is verified.`
		);
		await page.goto('/account');
		await expect(page.getByTestId('account-email')).toHaveText(email);
		await expect(page.getByTestId('account-email-state')).toHaveText('(verified)');
	}

	await page.goto('/me');
	await expect(page.getByTestId('me-email')).toHaveText(email);
});
