import { fail, redirect } from '@sveltejs/kit';
import { failStatus, formErrors, readForm } from '$lib/server/forms';
import { setSession } from '$lib/server/session';
import type { LoginResponse, User } from '$lib/types';
import type { Actions, PageServerLoad } from './$types';

const FIELDS = ['username', 'email', 'password'] as const;

export const load: PageServerLoad = ({ locals }) => {
	if (locals.user) redirect(303, '/me');
};

export const actions: Actions = {
	default: async ({ request, locals, cookies, url }) => {
		const values = await readForm(request, FIELDS);
		const created = await locals.api.post<User>('/api/auth/signup/', values);
		if (!created.ok) {
			return fail(failStatus(created), {
				values: { username: values.username, email: values.email },
				errors: formErrors(created, FIELDS)
			});
		}
		// Signed up: log in with the same credentials.
		const login = await locals.api.post<LoginResponse>('/api/auth/login/', {
			username: values.username,
			password: values.password
		});
		// 403: the address must be verified first (mandatory verification).
		if (!login.ok) redirect(303, login.status === 403 ? '/login?verify=1' : '/login?signedup=1');
		setSession(cookies, url, login.data.token, login.data.expiry);
		redirect(303, '/me');
	}
};
