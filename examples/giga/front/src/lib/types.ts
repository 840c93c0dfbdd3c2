// Shapes of the Django API's JSON (docs/api-contract.md).
// Types only: safe to import from components and server code alike.

export interface User {
	id: number;
	username: string;
	email: string;
	/** Whether the owner followed a link mailed to `email`; null: this site does not verify addresses. */
	email_verified: boolean | null;
	is_staff: boolean;
	date_joined: string;
}

/**
 * GET /api/health/: 200 `ok` when the API reached the database, 503
 * `unavailable` when not. The public gets nothing more; staff tokens get
 * extra keys, which the home page does not show.
 */
export interface Health {
	status: 'ok' | 'unavailable';
}

/** POST /api/auth/login/, 200. */
export interface LoginResponse {
	token: string;
	/** When the token stops working (ISO 8601); null if never. */
	expiry?: string | null;
	user: User;
}

/** Account actions with nothing else to say (docs/api-contract.md). */
export interface Detail {
	detail: string;
}

/** DRF's page-number pagination. */
export interface Paginated<T> {
	count: number;
	next: string | null;
	previous: string | null;
	results: T[];
}

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
