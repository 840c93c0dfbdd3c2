import { render } from 'svelte/server';
import { describe, expect, it } from 'vitest';
import { textByTestId as byTestId } from '$lib/testing/html';
import SystemStatus from './SystemStatus.svelte';

describe('SystemStatus', () => {
	it('shows a healthy system', () => {
		const { body } = render(SystemStatus, {
			props: { status: { api: 'ok', database: 'ok', detail: null } }
		});
		expect(byTestId(body, 'api-status')).toBe('ok');
		expect(byTestId(body, 'db-status')).toBe('ok');
		expect(byTestId(body, 'system-state')).toBe('All systems operational');
		expect(byTestId(body, 'status-detail')).toBeNull();
	});

	it('shows a degraded state when the API cannot reach the database', () => {
		const { body } = render(SystemStatus, {
			props: {
				status: {
					api: 'degraded',
					database: 'unreachable',
					detail: 'The API is up but cannot reach the database.'
				}
			}
		});
		expect(byTestId(body, 'api-status')).toBe('degraded');
		expect(byTestId(body, 'db-status')).toBe('unreachable');
		expect(byTestId(body, 'system-state')).toMatch(/^Degraded/);
		expect(byTestId(body, 'status-detail')).toBe('The API is up but cannot reach the database.');
		expect(body).toMatch(/data-testid="db-status" class="bad[^"]*"/);
	});

	it('escapes what it shows', () => {
		const { body } = render(SystemStatus, {
			props: { status: { api: 'down', database: 'unknown', detail: '<b>x</b>' } }
		});
		expect(body).not.toContain('<b>x</b>');
		expect(body).toContain('&lt;b>x&lt;/b>');
	});
});
