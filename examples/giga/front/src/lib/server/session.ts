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
/** Layers of percent-encoding looked through; more than this is refused. */
const MAX_DECODINGS = 4;

/**
 * One layer of percent-decoding. Where the escapes are not UTF-8, the ASCII
 * ones are decoded all the same, as lenient decoders do: `%2F` is a slash to
 * a proxy or server that decodes again whatever else the string holds.
 */
function decodeOnce(text: string): string {
	try {
		return decodeURIComponent(text);
	} catch {
		return text.replace(/%([0-7][0-9a-f])/gi, (_, hex: string) =>
			String.fromCharCode(parseInt(hex, 16))
		);
	}
}

/**
 * `text` as given and decoded layer by layer until nothing changes: what a
 * browser, a proxy or a server further on may act on. Null when it is encoded
 * deeper than MAX_DECODINGS.
 */
function decodings(text: string): string[] | null {
	const forms = [text];
	for (let layer = 0; layer <= MAX_DECODINGS; layer++) {
		const decoded = decodeOnce(forms[forms.length - 1]);
		if (decoded === forms[forms.length - 1]) return forms;
		forms.push(decoded);
	}
	return null;
}

/**
 * A path on `origin`: one leading slash, no backslash (browsers read it as
 * "/") and no control character, and still so once the URL parser has
 * resolved it: `/./`, `/../` and `%2e` segments can leave a `//` in front.
 */
function isLocalPath(path: string, origin: string): boolean {
	if (!path.startsWith('/') || path.startsWith('//') || path.includes('\\')) return false;
	if (CONTROL.test(path)) return false;
	try {
		const target = new URL(path, origin);
		return target.origin === origin && !target.pathname.startsWith('//');
	} catch {
		return false;
	}
}

/**
 * Where to go after logging in: a path on this site, or `fallback`. `next`
 * comes from the query string, so anyone can write it. It is normalised
 * first, as a browser would (WHATWG URL parsing: percent-encoded dot segments
 * resolved, tabs and newlines dropped), and only then checked: the result,
 * and `next` itself, must be a plain path on this origin as given and at
 * every layer of percent-decoding, and must read back as itself. The
 * Location header holds exactly what was checked.
 */
export function safeNext(next: string | null, url: URL, fallback = '/me'): string {
	if (!next) return fallback;
	// Broken percent-encoding is refused, not guessed at.
	try {
		decodeURIComponent(next);
	} catch {
		return fallback;
	}
	const origin = url.origin;
	let target: URL;
	try {
		target = new URL(next, origin);
	} catch {
		return fallback;
	}
	if (target.origin !== origin) return fallback;
	const path = target.pathname + target.search + target.hash;
	for (const candidate of [next, path]) {
		const forms = decodings(candidate);
		if (!forms || !forms.every((form) => isLocalPath(form, origin))) return fallback;
	}
	const again = new URL(path, origin);
	if (again.origin !== origin || again.pathname + again.search + again.hash !== path) {
		return fallback;
	}
	return path;
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
