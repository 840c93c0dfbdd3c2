import { describe, expect, it } from 'vitest';
import type { ApiHttpError, ApiResult } from './api';
import type { Health } from '$lib/types';
import { systemStatus } from './status';

function httpError(status: number, body: unknown, detail: string | null = null): ApiHttpError {
	return { ok: false, kind: 'http', status, detail, fieldErrors: {}, nonFieldErrors: [], body };
}

describe('systemStatus', () => {
	it('is all ok when the API answers 200 ok', () => {
		expect(systemStatus({ ok: true, status: 200, data: { status: 'ok' } })).toEqual({
			api: 'ok',
			database: 'ok',
			detail: null
		});
	});

	it('ignores the extra keys staff get, whatever they hold', () => {
		const data = { status: 'ok', database: 'error', users: 7 } as unknown as { status: 'ok' };
		expect(systemStatus({ ok: true, status: 200, data })).toEqual({
			api: 'ok',
			database: 'ok',
			detail: null
		});
	});

	it('is degraded with the database unreachable on the health 503', () => {
		const status = systemStatus(httpError(503, { status: 'unavailable' }));
		expect(status).toMatchObject({ api: 'degraded', database: 'unreachable' });
		expect(status.detail).toMatch(/database/);
	});

	it('is degraded with the database unknown on any other answer', () => {
		const cases: [ApiResult<Health>, string][] = [
			[httpError(500, null, 'The API answered HTTP 500'), 'The API answered HTTP 500.'],
			[httpError(503, null, 'The API answered HTTP 503'), 'The API answered HTTP 503.'],
			[httpError(404, { detail: 'Not found.' }), 'The API answered HTTP 404.'],
			[
				{ ok: true, status: 200, data: null as unknown as Health },
				'The API answered, but not with its health status.'
			]
		];
		for (const [result, detail] of cases) {
			expect(systemStatus(result)).toEqual({ api: 'degraded', database: 'unknown', detail });
		}
	});

	it('is down when the API does not answer, without leaking where it is', () => {
		const status = systemStatus({
			ok: false,
			kind: 'network',
			status: 0,
			detail: 'cannot reach the API at http://giga-backend:8000: ENOTFOUND'
		});
		expect(status).toMatchObject({ api: 'down', database: 'unknown' });
		expect(status.detail).not.toContain('giga-backend');
	});
});
