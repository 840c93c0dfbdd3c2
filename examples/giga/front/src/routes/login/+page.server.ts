import { fail, redirect } from '@sveltejs/kit';
import { failStatus, formErrors, readForm } from '$lib/server/forms';
import { safeNext, setSession } from '$lib/server/session';
import type { LoginResponse } from '$lib/types';
import type { Actions, PageServerLoad } from './$types';

const FIELDS = ['username', 'password'] as const;

export const load: PageServerLoad = ({ locals, url }) => {
	if (locals.user) redirect(303, safeNext(url.searchParams.get('next'), url));
	return {
		signedUp: url.searchParams.has('signedup'),
		mustVerify: url.searchParams.has('verify'),
		reset: url.searchParams.has('reset')
	};
};

export const actions: Actions = {
	default: async ({ request, locals, cookies, url }) => {
		const values = await readForm(request, FIELDS);
		const result = await locals.api.post<LoginResponse>('/api/auth/login/', values);
		if (!result.ok) {
			// Never send the password back.
			return fail(failStatus(result), {
				values: { username: values.username },
				errors: formErrors(result, FIELDS)
			});
		}
		setSession(cookies, url, result.data.token, result.data.expiry);
		redirect(303, safeNext(url.searchParams.get('next'), url));
	}
};
