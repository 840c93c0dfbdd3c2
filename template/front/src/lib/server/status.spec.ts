import { describe, expect, it } from 'vitest';
import type { ApiResult } from './api';
import { systemStatus } from './status';
import type { Health } from '$lib/types';

describe('systemStatus', () => {
	it('is all ok when the API answers 200', () => {
		const result: ApiResult<Health> = {
			ok: true,
			status: 200,
			data: { status: 'ok', database: 'ok', users: 7 }
		};
		expect(systemStatus(result)).toEqual({ api: 'ok', database: 'ok', users: 7, detail: null });
	});

	it('is degraded with the database unreachable on the health 503', () => {
		const status = systemStatus({
			ok: false,
			kind: 'http',
			status: 503,
			detail: 'timeout expired',
			fieldErrors: {},
			nonFieldErrors: [],
			body: { status: 'unavailable', database: 'unreachable', detail: 'timeout expired' }
		});
		expect(status).toMatchObject({ api: 'degraded', database: 'unreachable', users: null });
		expect(status.detail).toMatch(/database/);
	});

	it('is degraded with the database unknown on any other error status', () => {
		const status = systemStatus({
			ok: false,
			kind: 'http',
			status: 500,
			detail: 'The API answered HTTP 500 Internal Server Error',
			fieldErrors: {},
			nonFieldErrors: [],
			body: null
		});
		expect(status).toEqual({
			api: 'degraded',
			database: 'unknown',
			users: null,
			detail: 'The API answered HTTP 500.'
		});
	});

	it('is down when the API does not answer, without leaking where it is', () => {
		const status = systemStatus({
			ok: false,
			kind: 'network',
			status: 0,
			detail: 'cannot reach the API at http://giga-backend:8000: ENOTFOUND'
		});
		expect(status).toMatchObject({ api: 'down', database: 'unknown', users: null });
		expect(status.detail).not.toContain('giga-backend');
	});
});
