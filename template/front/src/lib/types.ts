// The app's own shapes. The API's come from its OpenAPI schema ($lib/api),
// re-exported here so that a page imports its types from one place.

export type { Detail, EmailChangeResponse, Health, LoginResponse, User, UserPage } from '$lib/api';

/** What the home page shows: derived from the health check, never throws. */
export interface SystemStatus {
	/** ok: answered 200; degraded: answered, but not 200; down: no answer. */
	api: 'ok' | 'degraded' | 'down';
	database: 'ok' | 'unreachable' | 'unknown';
	/** Why it is not ok, for people. */
	detail: string | null;
}

/** Errors a form action returns: per field, and for the whole form. */
export interface FormErrors {
	fields: Record<string, string[]>;
	form: string[];
}
