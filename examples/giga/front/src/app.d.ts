// See https://svelte.dev/docs/kit/types#app.d.ts
// for information about these interfaces
import type { ApiClient } from '$lib/server/api';
import type { User } from '$lib/types';

declare global {
	namespace App {
		interface Error {
			message: string;
			/** The request's id, on unexpected errors: people can quote it, logs and reports carry it. */
			requestId?: string;
		}
		interface Locals {
			/** Ties the request's log line, API calls and error report together; sent as X-Request-ID. */
			requestId: string;
			/** The API client, authenticated with the session cookie's token if any. */
			api: ApiClient;
			/** Who is logged in, from GET /api/auth/me/; null when anonymous. */
			user: User | null;
			/** The session could not be checked because the API is down or failing. */
			apiUnavailable: boolean;
		}
		// interface PageData {}
		// interface PageState {}
		// interface Platform {}
	}
}

export {};
