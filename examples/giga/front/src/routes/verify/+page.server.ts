import { fail, redirect } from '@sveltejs/kit';
import { failStatus, formErrors, readForm } from '$lib/server/forms';
import type { Detail } from '$lib/types';
import type { Actions, PageServerLoad } from './$types';

const FIELDS = ['email'] as const;

export const load: PageServerLoad = ({ url }) => ({ sent: url.searchParams.has('sent') });

export const actions: Actions = {
	// A new verification link, for an account that lost (or never got) its mail.
	default: async ({ request, locals }) => {
		const values = await readForm(request, FIELDS);
		const result = await locals.api.post<Detail>('/api/auth/email/verify/resend/', values);
		if (!result.ok) {
			return fail(failStatus(result), { values, errors: formErrors(result, FIELDS) });
		}
		redirect(303, '/verify?sent=1');
	}
};
