import {
	expect,
	logIn,
	newUser,
	requestReset,
	resetByLink,
	signUpAndVerify,
	test
} from './fixtures';

test('forgot the password: the mailed link sets a new one, once', async ({
	page,
	mail,
	emailVerification
}) => {
	const user = newUser('rita');
	await signUpAndVerify(page, user, mail, emailVerification);

	// An address no account uses gets the same page (and no mail).
	await requestReset(page, `nobody-${user.email}`);
	await requestReset(page, user.email);
	const link = await mail.link(user.email, '/reset/');

	const renewed = { ...user, password: 'Rem3mbered-at-last' };
	await resetByLink(page, link, renewed.password);
	await expect(page).toHaveURL(/\/login\?reset=1$/);
	await expect(page.getByRole('status')).toHaveText(
		'Your password was reset. Log in with the new one.'
	);

	// The link worked once.
	await resetByLink(page, link, 'Y3t-another-passphrase');
	await expect(page.getByTestId('error-form')).toHaveText(
		'This password reset link is invalid, already used or expired. Ask for a new one.'
	);

	// Only the new password works. (Each step is an attempt on the account,
	// which the backend allows 5 a minute.)
	await logIn(page, user);
	await expect(page.getByTestId('error-form')).toContainText('Unable to log in');
	await logIn(page, renewed);
	await expect(page).toHaveURL(/\/me$/);
	await expect(page.getByTestId('me-username')).toHaveText(user.username);
});
