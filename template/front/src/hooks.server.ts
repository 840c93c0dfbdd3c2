import type { Handle } from '@sveltejs/kit';
import { env } from '$env/dynamic/private';
import { createApiClient } from '$lib/server/api';
import { clearSession, SESSION_COOKIE } from '$lib/server/session';
import type { User } from '$lib/types';

/** Resolves the current user from the session cookie, once per request. */
export const handle: Handle = async ({ event, resolve }) => {
	const token = event.cookies.get(SESSION_COOKIE) ?? null;
	event.locals.api = createApiClient({ baseUrl: env.INTERNAL_API_URL, token });
	event.locals.user = null;
	event.locals.apiUnavailable = false;

	if (token) {
		const me = await event.locals.api.get<User>('/api/auth/me/');
		if (me.ok) {
			event.locals.user = me.data;
		} else if (me.status === 401) {
			// Logged out elsewhere, or the token was deleted: forget it.
			clearSession(event.cookies);
			event.locals.api = event.locals.api.withToken(null);
		} else {
			// Down or failing: we cannot tell who this is; keep the cookie.
			event.locals.apiUnavailable = true;
			console.error(`GET /api/auth/me/ failed: ${me.detail ?? `HTTP ${me.status}`}`);
		}
	}

	return resolve(event);
};
