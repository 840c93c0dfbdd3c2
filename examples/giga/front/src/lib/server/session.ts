import { error, redirect, type Cookies } from '@sveltejs/kit';
import type { User } from '$lib/types';

/** The httpOnly cookie that holds the API token (docs/api-contract.md). */
export const SESSION_COOKIE = 'session';
/** How long the cookie lives when the API gives no expiry for the token. */
const DEFAULT_MAX_AGE = 60 * 60 * 24 * 7;

/**
 * Stores the API token. The cookie lives as long as the token: `expiry` is
 * the ISO timestamp the API gives with it (null or absent: a week).
 */
export function setSession(
	cookies: Cookies,
	url: URL,
	token: string,
	expiry?: string | null,
	now = Date.now()
): void {
	cookies.set(SESSION_COOKIE, token, {
		path: '/',
		httpOnly: true,
		sameSite: 'lax',
		// Secure whenever the site is served over HTTPS (production); a Secure
		// cookie sent over plain http://host:port would be dropped by browsers.
		secure: url.protocol === 'https:',
		maxAge: maxAge(expiry, now)
	});
}

function maxAge(expiry: string | null | undefined, now: number): number {
	const expires = expiry ? Date.parse(expiry) : NaN;
	if (Number.isNaN(expires)) return DEFAULT_MAX_AGE;
	return Math.max(0, Math.floor((expires - now) / 1000));
}

export function clearSession(cookies: Cookies): void {
	cookies.delete(SESSION_COOKIE, { path: '/' });
}

// C0 and C1 controls and DEL: browsers drop tabs and newlines from URLs
// (`/\t/evil.example` becomes `//evil.example`), and CR/LF cannot go in a header.
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;

/**
 * Where to go after logging in: a path on this site, or `fallback`. `next`
 * comes from the query string, so anyone can write it: it must resolve to
 * this origin, read as a plain path both as given and once decoded, with no
 * control character and no backslash (which browsers read as "/").
 */
export function safeNext(next: string | null, url: URL, fallback = '/me'): string {
	if (!next) return fallback;
	let decoded: string;
	try {
		decoded = decodeURIComponent(next);
	} catch {
		return fallback;
	}
	for (const form of [next, decoded]) {
		if (!form.startsWith('/') || form.startsWith('//') || form.includes('\\')) return fallback;
		if (CONTROL.test(form)) return fallback;
	}
	const target = new URL(next, url.origin);
	if (target.origin !== url.origin) return fallback;
	// The URL as parsed, so the Location header holds exactly what was checked.
	return target.pathname + target.search + target.hash;
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
