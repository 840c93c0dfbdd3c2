import { describe, expect, it } from 'vitest';
import { isHttpError, isRedirect } from '@sveltejs/kit';
import { loginUrl, requireUser, safeNext } from './session';
import { createApiClient } from './api';

describe('safeNext', () => {
	it('keeps paths on this site', () => {
		expect(safeNext('/users?page=2')).toBe('/users?page=2');
	});

	it('refuses other origins and falls back', () => {
		for (const next of [null, '', 'https://evil.example/', '//evil.example/', '/\\evil.example']) {
			expect(safeNext(next)).toBe('/me');
		}
		expect(safeNext('//evil.example', '/')).toBe('/');
	});
});

describe('requireUser', () => {
	const api = createApiClient({ baseUrl: 'http://127.0.0.1:9' });
	const url = new URL('http://localhost/users?page=2');
	const user = {
		id: 1,
		username: 'ada',
		email: '',
		is_staff: true,
		date_joined: '2025-01-01T00:00:00Z'
	};

	it('returns the logged-in user', () => {
		expect(requireUser({ api, user, apiUnavailable: false }, url)).toBe(user);
	});

	it('sends anonymous visitors to the login page, coming back afterwards', () => {
		expect(loginUrl(url)).toBe('/login?next=%2Fusers%3Fpage%3D2');
		try {
			requireUser({ api, user: null, apiUnavailable: false }, url);
			expect.unreachable();
		} catch (thrown) {
			expect(isRedirect(thrown) && thrown.location).toBe('/login?next=%2Fusers%3Fpage%3D2');
		}
	});

	it('answers 503 when the API could not say who this is', () => {
		try {
			requireUser({ api, user: null, apiUnavailable: true }, url);
			expect.unreachable();
		} catch (thrown) {
			expect(isHttpError(thrown, 503)).toBe(true);
		}
	});
});
