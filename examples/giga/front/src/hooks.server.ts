import type { Handle } from '@sveltejs/kit';
import { env } from '$env/dynamic/private';
import { createApiClient } from '$lib/server/api';
import { clearSession, SESSION_COOKIE } from '$lib/server/session';
import type { User } from '$lib/types';

/**
 * Sent with every response SvelteKit renders: pages, endpoints, errors and
 * redirects. The Content-Security-Policy itself comes from `csp` in
 * vite.config.ts, which adds the nonces of SvelteKit's inline scripts.
 */
const SECURITY_HEADERS = {
	'X-Content-Type-Options': 'nosniff',
	'Referrer-Policy': 'strict-origin-when-cross-origin',
	// For browsers without CSP's frame-ancestors.
	'X-Frame-Options': 'DENY'
} as const;

/** Resolves the current user from the session cookie, once per request. */
export const handle: Handle = async ({ event, resolve }) => {
	const token = event.cookies.get(SESSION_COOKIE) ?? null;
	event.locals.api = createApiClient({
		baseUrl: env.INTERNAL_API_URL,
		token,
		clientAddress: event.getClientAddress()
	});
	event.locals.user = null;
	event.locals.apiUnavailable = false;

	if (token) {
		const me = await event.locals.api.get<User>('/api/auth/me/');
		if (me.ok) {
			event.locals.user = me.data;
		} else if (me.status === 401) {
			// Expired, logged out elsewhere, or revoked: forget it.
			clearSession(event.cookies);
			event.locals.api = event.locals.api.withToken(null);
		} else {
			// Down or failing: we cannot tell who this is; keep the cookie.
			event.locals.apiUnavailable = true;
			console.error(`GET /api/auth/me/ failed: ${me.detail ?? `HTTP ${me.status}`}`);
		}
	}

	const response = await resolve(event);
	for (const [name, value] of Object.entries(SECURITY_HEADERS)) response.headers.set(name, value);
	return response;
};
