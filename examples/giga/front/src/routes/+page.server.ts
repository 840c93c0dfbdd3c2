import { systemStatus } from '$lib/server/status';
import type { Health } from '$lib/types';
import type { PageServerLoad } from './$types';

export const load: PageServerLoad = async ({ locals }) => {
	const result = await locals.api.get<Health>('/api/health/');
	if (!result.ok) console.error(`GET /api/health/ failed: ${result.detail ?? result.status}`);
	return { status: systemStatus(result) };
};
