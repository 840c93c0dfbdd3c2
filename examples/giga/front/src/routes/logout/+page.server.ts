import { redirect } from '@sveltejs/kit';
import { log } from '$lib/server/log';
import { clearSession } from '$lib/server/session';
import type { Actions, PageServerLoad } from './$types';

export const load: PageServerLoad = ({ locals }) => {
	// Logging out is a POST (the header's button); GET only offers the button.
	if (!locals.user && !locals.api.token) redirect(303, '/');
};

export const actions: Actions = {
	default: async ({ locals, cookies }) => {
		if (locals.api.token) {
			// Deletes the token server-side. Whatever the API says, the cookie goes.
			const result = await locals.api.post<null>('/api/auth/logout/');
			if (!result.ok && result.status !== 401) {
				log.error('api_call_failed', {
					request_id: locals.requestId,
					call: 'POST /api/auth/logout/',
					detail: result.detail ?? `HTTP ${result.status}`
				});
			}
		}
		clearSession(cookies);
		redirect(303, '/');
	}
};
