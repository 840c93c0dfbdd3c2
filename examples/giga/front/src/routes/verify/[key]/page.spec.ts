import { render } from 'svelte/server';
import { describe, expect, it } from 'vitest';
import { clean, textByTestId } from '$lib/testing/html';
import VerifyPage from './+page.svelte';

const data = { projectName: 'Giga', user: null };
const USED = 'This verification link is invalid, already used or expired. Ask for a new one.';

describe('verify page', () => {
	it('opened from the mail, shows only a button that posts the form', () => {
		const { body } = render(VerifyPage, { props: { data, form: null } });
		expect(clean(body)).toMatch(
			/<form method="POST"[^>]*>\s*<div><button type="submit">Verify my address<\/button>/
		);
		expect(textByTestId(body, 'verify-result')).toBeNull();
	});

	it('shows the answer once the button was pressed', () => {
		const form = { verified: true, message: 'Your email address ada@example.com is verified.' };
		const { body } = render(VerifyPage, { props: { data, form } });
		expect(textByTestId(body, 'verify-result')).toBe(form.message);
		expect(body).not.toContain('<form');
	});

	it('shows why the link failed, with a way to a new one', () => {
		const form = { verified: false, message: USED, retry: false };
		const { body } = render(VerifyPage, { props: { data, form } });
		expect(textByTestId(body, 'verify-result')).toBe(USED);
		expect(body).toContain('Send me a new link');
		expect(body).not.toContain('<form');
	});

	it('offers the button again when the API could not answer', () => {
		const form = { verified: false, message: 'The service is unavailable.', retry: true };
		const { body } = render(VerifyPage, { props: { data, form } });
		expect(textByTestId(body, 'verify-result')).toBe('The service is unavailable.');
		expect(body).toContain('Verify my address');
	});
});
