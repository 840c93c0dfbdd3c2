import type { ApiResult } from './api';
import type { Health, SystemStatus } from '$lib/types';

/**
 * What the home page shows, from GET /api/health/. The API answers only
 * `{"status": "ok"}` (it reached the database) or 503 `{"status":
 * "unavailable"}` (it did not). Every outcome is a status, none throws.
 */
export function systemStatus(result: ApiResult<Health>): SystemStatus {
	if (result.ok) {
		if (result.data?.status === 'ok') return { api: 'ok', database: 'ok', detail: null };
		return {
			api: 'degraded',
			database: 'unknown',
			detail: 'The API answered, but not with its health status.'
		};
	}
	if (result.kind === 'network') {
		return { api: 'down', database: 'unknown', detail: 'The API does not answer.' };
	}
	const body = result.body as Partial<Health> | null;
	if (result.status === 503 && body?.status === 'unavailable') {
		return {
			api: 'degraded',
			database: 'unreachable',
			detail: 'The API is up but cannot reach the database.'
		};
	}
	return {
		api: 'degraded',
		database: 'unknown',
		detail: `The API answered HTTP ${result.status}.`
	};
}
