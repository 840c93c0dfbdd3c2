import { render } from 'svelte/server';
import { describe, expect, it } from 'vitest';
import Field from './Field.svelte';

describe('Field', () => {
	it('labels its input and keeps the value', () => {
		const { body } = render(Field, {
			props: { name: 'username', label: 'Username', value: 'ada', autocomplete: 'username' }
		});
		expect(body).toMatch(/<label for="field-username"[^>]*>Username<\/label>/);
		expect(body).toMatch(/<input[^>]* id="field-username"/);
		expect(body).toMatch(/<input[^>]* name="username"/);
		expect(body).toMatch(/<input[^>]* value="ada"/);
		expect(body).not.toContain('aria-invalid');
		expect(body).not.toContain('data-testid="error-username"');
	});

	it('shows the API messages next to the field and links them to it', () => {
		const { body } = render(Field, {
			props: {
				name: 'password',
				label: 'Password',
				type: 'password',
				errors: ['This password is too short.', 'This password is too common.']
			}
		});
		expect(body).toMatch(/<input[^>]* aria-invalid="true"/);
		expect(body).toMatch(/<input[^>]* aria-describedby="error-password"/);
		const error = /<p[^>]*data-testid="error-password"[^>]*>([^<]*)<\/p>/.exec(body);
		expect(error?.[1]).toBe('This password is too short. This password is too common.');
	});
});
