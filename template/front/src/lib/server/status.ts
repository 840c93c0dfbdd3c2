import type { ApiResult } from './api';
import type { Health, HealthUnavailable, SystemStatus } from '$lib/types';

/** What the home page shows, from GET /api/health/. Every outcome is a status, none throws. */
export function systemStatus(result: ApiResult<Health>): SystemStatus {
	if (result.ok) {
		const users = typeof result.data?.users === 'number' ? result.data.users : null;
		return {
			api: 'ok',
			database: result.data?.database === 'ok' ? 'ok' : 'unknown',
			users,
			detail: null
		};
	}
	if (result.kind === 'network') {
		return {
			api: 'down',
			database: 'unknown',
			users: null,
			detail: 'The API does not answer.'
		};
	}
	const body = result.body as Partial<HealthUnavailable> | null;
	if (result.status === 503 && body?.database === 'unreachable') {
		return {
			api: 'degraded',
			database: 'unreachable',
			users: null,
			detail: 'The API is up but cannot reach the database.'
		};
	}
	return {
		api: 'degraded',
		database: 'unknown',
		users: null,
		detail: `The API answered HTTP ${result.status}.`
	};
}
