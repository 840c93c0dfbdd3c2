import { log } from '$lib/server/log';
import { systemStatus } from '$lib/server/status';
import type { Health } from '$lib/types';
import type { PageServerLoad } from './$types';

export const load: PageServerLoad = async ({ locals }) => {
	const result = await locals.api.get<Health>('/api/health/');
	if (!result.ok) {
		log.error('api_call_failed', {
			request_id: locals.requestId,
			call: 'GET /api/health/',
			detail: result.detail ?? `HTTP ${result.status}`
		});
	}
	return { status: systemStatus(result) };
};
