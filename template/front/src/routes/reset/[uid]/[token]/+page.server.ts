import { fail, redirect } from '@sveltejs/kit';
import { failStatus, formErrors, readForm } from '$lib/server/forms';
import type { Detail } from '$lib/types';
import type { Actions } from './$types';

const FIELDS = ['new_password'] as const;

export const actions: Actions = {
	// The link's uid and token go to the API with the new password; an
	// invalid, used or expired link is the API's form-level message.
	default: async ({ request, locals, params }) => {
		const values = await readForm(request, FIELDS);
		const result = await locals.api.post<Detail>('/api/auth/password/reset/confirm/', {
			uid: params.uid,
			token: params.token,
			...values
		});
		if (!result.ok) {
			// Never send the password back.
			return fail(failStatus(result), { errors: formErrors(result, FIELDS) });
		}
		redirect(303, '/login?reset=1');
	}
};
