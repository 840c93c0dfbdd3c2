// See https://svelte.dev/docs/kit/types#app.d.ts
// for information about these interfaces
import type { ApiClient } from '$lib/server/api';
import type { User } from '$lib/types';

declare global {
	namespace App {
		// interface Error {}
		interface Locals {
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
