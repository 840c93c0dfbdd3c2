import { error, redirect, type Cookies } from '@sveltejs/kit';
import type { User } from '$lib/types';

/** The httpOnly cookie that holds the API token (docs/api-contract.md). */
export const SESSION_COOKIE = 'session';
const WEEK = 60 * 60 * 24 * 7;

export function setSession(cookies: Cookies, url: URL, token: string): void {
	cookies.set(SESSION_COOKIE, token, {
		path: '/',
		httpOnly: true,
		sameSite: 'lax',
		// Secure whenever the site is served over HTTPS (production); a Secure
		// cookie sent over plain http://host:port would be dropped by browsers.
		secure: url.protocol === 'https:',
		maxAge: WEEK
	});
}

export function clearSession(cookies: Cookies): void {
	cookies.delete(SESSION_COOKIE, { path: '/' });
}

/**
 * Where to go after logging in: a path on this site, never another origin
 * (`//evil.example`, `/\evil.example`, `https://...`).
 */
export function safeNext(next: string | null, fallback = '/me'): string {
	if (!next || !next.startsWith('/') || next.startsWith('//') || next.startsWith('/\\')) {
		return fallback;
	}
	return next;
}

/** The login page, coming back to `url` afterwards. */
export function loginUrl(url: URL): string {
	return `/login?next=${encodeURIComponent(url.pathname + url.search)}`;
}

/** The current user, or a redirect to log in (or 503 if the API could not tell). */
export function requireUser(locals: App.Locals, url: URL): User {
	if (locals.user) return locals.user;
	if (locals.apiUnavailable) error(503, 'The service is unavailable right now.');
	redirect(303, loginUrl(url));
}
