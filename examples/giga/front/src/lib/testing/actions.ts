// Runs a form action as SvelteKit would: a real POST request, a cookie jar,
// and locals with an API client pointed at a test server.
import { isActionFailure, isRedirect, type ActionFailure, type Cookies } from '@sveltejs/kit';
import { createApiClient } from '$lib/server/api';
import type { User } from '$lib/types';

type Action = (event: never) => unknown;

export type ActionOutcome =
	| { kind: 'failure'; status: number; data: unknown; cookies: Map<string, string> }
	| { kind: 'redirect'; location: string; cookies: Map<string, string> };

export async function runAction(
	action: Action,
	options: {
		url: string;
		form: Record<string, string>;
		apiUrl: string;
		/** The route's parameters, e.g. { uid, token }. */
		params?: Record<string, string>;
		/** A logged-in user: their API token and the user object. */
		session?: { token: string; user: User };
	}
): Promise<ActionOutcome> {
	const jar = new Map<string, string>();
	const cookies = {
		get: (name: string) => jar.get(name),
		set: (name: string, value: string) => void jar.set(name, value),
		delete: (name: string) => void jar.delete(name)
	} as unknown as Cookies;
	const url = new URL(options.url);
	const request = new Request(url, { method: 'POST', body: new URLSearchParams(options.form) });
	const api = createApiClient({
		baseUrl: options.apiUrl,
		clientAddress: '203.0.113.7',
		token: options.session?.token
	});
	const locals: App.Locals = {
		requestId: 'test-request-id',
		api,
		user: options.session?.user ?? null,
		apiUnavailable: false
	};
	const params = options.params ?? {};
	try {
		const result = await action({ request, url, cookies, locals, params } as never);
		if (isActionFailure(result)) {
			const failure = result as ActionFailure<unknown>;
			return { kind: 'failure', status: failure.status, data: failure.data, cookies: jar };
		}
		throw new Error(`the action returned ${JSON.stringify(result)}`);
	} catch (thrown) {
		if (isRedirect(thrown)) return { kind: 'redirect', location: thrown.location, cookies: jar };
		throw thrown;
	}
}
