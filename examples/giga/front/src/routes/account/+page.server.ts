import { fail, redirect } from '@sveltejs/kit';
import { failStatus, formErrors, readForm } from '$lib/server/forms';
import { requireUser } from '$lib/server/session';
import type { Detail, EmailChangeResponse, FormErrors } from '$lib/types';
import type { Actions, PageServerLoad } from './$types';

const PASSWORD_FIELDS = ['old_password', 'new_password'] as const;
const EMAIL_FIELDS = ['email', 'password'] as const;

/** POST /api/auth/email/change/, 200. */
/** What a failed action returns: which form, its errors, the address typed (never a password). */
interface Failure {
	action: 'password' | 'email' | 'resend';
	email?: string;
	errors: FormErrors;
}

const failure = (status: number, data: Failure) => fail(status, data);

export const load: PageServerLoad = ({ locals, url }) => ({
	me: requireUser(locals, url),
	done: url.searchParams.get('done')
});

export const actions: Actions = {
	password: async ({ request, locals, url }) => {
		requireUser(locals, url);
		const values = await readForm(request, PASSWORD_FIELDS);
		const result = await locals.api.post<Detail>('/api/auth/password/change/', values);
		if (!result.ok) {
			return failure(failStatus(result), {
				action: 'password',
				errors: formErrors(result, PASSWORD_FIELDS)
			});
		}
		redirect(303, '/account?done=password');
	},

	email: async ({ request, locals, url }) => {
		requireUser(locals, url);
		const values = await readForm(request, EMAIL_FIELDS);
		const result = await locals.api.post<EmailChangeResponse>('/api/auth/email/change/', values);
		if (!result.ok) {
			return failure(failStatus(result), {
				action: 'email',
				email: values.email,
				errors: formErrors(result, EMAIL_FIELDS)
			});
		}
		// With verification on, the address changes once the mailed link is followed.
		const replaced = result.data.user.email === values.email;
		redirect(303, `/account?done=${replaced ? 'email' : 'email-pending'}`);
	},

	resend: async ({ locals, url }) => {
		const me = requireUser(locals, url);
		const result = await locals.api.post<Detail>('/api/auth/email/verify/resend/', {
			email: me.email
		});
		if (!result.ok) {
			return failure(failStatus(result), { action: 'resend', errors: formErrors(result, []) });
		}
		redirect(303, '/account?done=resend');
	}
};
