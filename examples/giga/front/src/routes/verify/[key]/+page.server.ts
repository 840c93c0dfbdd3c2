import { fail } from '@sveltejs/kit';
import type { ApiError } from '$lib/server/api';
import { failStatus, UNAVAILABLE_MESSAGE } from '$lib/server/forms';
import type { Detail } from '$lib/types';
import type { Actions } from './$types';

// Opening the mailed link changes nothing: mail scanners and link previews
// open links too, and must not verify an address for its owner. The page only
// offers a button; its POST sends the key to the API, server-side.
export const actions: Actions = {
	default: async ({ locals, params }) => {
		const result = await locals.api.post<Detail>('/api/auth/email/verify/', { key: params.key });
		if (result.ok) return { verified: true, message: result.data.detail };
		return fail(failStatus(result), { verified: false, ...why(result) });
	}
};

/** The API's reason (a used or expired link), or that it could not answer: then the link may work later. */
function why(result: ApiError): { message: string; retry: boolean } {
	if (result.kind === 'network' || result.status >= 500) {
		return { message: UNAVAILABLE_MESSAGE, retry: true };
	}
	const message =
		[...result.nonFieldErrors, result.detail].find(Boolean) ??
		'This verification link is not valid.';
	return { message, retry: result.status === 429 };
}
