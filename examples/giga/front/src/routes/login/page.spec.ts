import { render } from 'svelte/server';
import { describe, expect, it } from 'vitest';
import { clean, textByTestId } from '$lib/testing/html';
import LoginPage from './+page.svelte';

const data = { projectName: 'Giga', user: null, signedUp: false, mustVerify: false, reset: false };

describe('login page', () => {
	it('renders an empty form with labelled fields', () => {
		const { body } = render(LoginPage, { props: { data, form: null } });
		expect(body).toMatch(/<form method="POST"/);
		expect(body).toMatch(/<label for="field-username"[^>]*>Username</);
		expect(body).toMatch(/<label for="field-password"[^>]*>Password</);
		expect(body).not.toContain('data-testid="error-');
	});

	it('shows form-level and field errors from a failed action, never the password', () => {
		const form = {
			values: { username: 'ada' },
			errors: {
				fields: { password: ['This field may not be blank.'] },
				form: ['Unable to log in with provided credentials.']
			}
		};
		const { body } = render(LoginPage, { props: { data, form } });
		expect(textByTestId(body, 'error-form')).toBe('Unable to log in with provided credentials.');
		expect(textByTestId(body, 'error-password')).toBe('This field may not be blank.');
		expect(textByTestId(body, 'error-username')).toBeNull();
		const inputs = clean(body).match(/<input[^>]*>/g) ?? [];
		const input = (name: string) => inputs.find((tag) => tag.includes(` name="${name}"`));
		expect(input('username')).toContain(' value="ada"');
		expect(input('password')).toBeDefined();
		expect(input('password')).not.toMatch(/ value="[^"]+"/);
	});
});
