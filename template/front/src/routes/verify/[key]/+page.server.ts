import { UNAVAILABLE_MESSAGE } from '$lib/server/forms';
import type { Detail } from '$lib/types';
import type { PageServerLoad } from './$types';

// Opening the mailed link is the proof: the key is sent to the API on load,
// server-side, and the page shows what it answered.
export const load: PageServerLoad = async ({ locals, params }) => {
	const result = await locals.api.post<Detail>('/api/auth/email/verify/', { key: params.key });
	if (result.ok) return { verified: true, message: result.data.detail };
	if (result.kind === 'network' || result.status >= 500) {
		return { verified: false, message: UNAVAILABLE_MESSAGE };
	}
	const message =
		[...result.nonFieldErrors, result.detail].find(Boolean) ??
		'This verification link is not valid.';
	return { verified: false, message };
};
