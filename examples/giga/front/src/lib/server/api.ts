// The only way this app talks to the Django API. Server-side only: it lives in
// $lib/server, which SvelteKit refuses to bundle for the browser.
//
// Every call resolves to an ApiResult, never throws: HTTP errors carry DRF's
// error body, parsed; network failures and time-outs become kind 'network'.

export interface ApiSuccess<T> {
	ok: true;
	status: number;
	data: T;
}

/** The API answered, with a status other than 2xx. */
export interface ApiHttpError {
	ok: false;
	kind: 'http';
	status: number;
	/** DRF's `{"detail": "..."}`, or a description of a body that was not JSON. */
	detail: string | null;
	/** DRF's field errors: `{"field": ["message", ...]}`. */
	fieldErrors: Record<string, string[]>;
	/** DRF's `non_field_errors`. */
	nonFieldErrors: string[];
	/** The parsed JSON body, or null. */
	body: unknown;
}

/** The API did not answer: not configured, refused, unresolvable, timed out. */
export interface ApiNetworkError {
	ok: false;
	kind: 'network';
	status: 0;
	detail: string;
}

export type ApiError = ApiHttpError | ApiNetworkError;
export type ApiResult<T> = ApiSuccess<T> | ApiError;

export interface ApiClientOptions {
	/** INTERNAL_API_URL, e.g. http://giga-backend:8000. */
	baseUrl: string | undefined;
	/** DRF token, sent as `Authorization: Token <token>`. */
	token?: string | null;
	/**
	 * The browser's address (`event.getClientAddress()`), sent as
	 * `X-Forwarded-For` so that the API throttles per person, not per
	 * SvelteKit server. The API trusts that header from this server only.
	 */
	clientAddress?: string | null;
	/** This request's id (`locals.requestId`), sent as `X-Request-ID` to tie the API's logs to ours. */
	requestId?: string | null;
	/** Give up after this long (health answers within a few seconds). */
	timeoutMs?: number;
	fetch?: typeof globalThis.fetch;
}

export const DEFAULT_TIMEOUT_MS = 8000;

export class ApiClient {
	readonly token: string | null;
	readonly clientAddress: string | null;
	readonly requestId: string | null;
	readonly timeoutMs: number;
	readonly #base: URL | null;
	readonly #configError: string | null;
	readonly #fetch: typeof globalThis.fetch;

	constructor(options: ApiClientOptions) {
		this.token = options.token || null;
		this.clientAddress = options.clientAddress || null;
		this.requestId = options.requestId || null;
		this.timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
		this.#fetch = options.fetch ?? globalThis.fetch;
		const parsed = parseBaseUrl(options.baseUrl);
		this.#base = parsed.url;
		this.#configError = parsed.error;
	}

	/** The same client, authenticated as someone else (or no one). */
	withToken(token: string | null): ApiClient {
		return new ApiClient({
			baseUrl: this.#base?.href,
			token,
			clientAddress: this.clientAddress,
			requestId: this.requestId,
			timeoutMs: this.timeoutMs,
			fetch: this.#fetch
		});
	}

	/** Absolute URL of an API path such as `/api/users/?page=2`. */
	url(path: string): URL {
		if (!this.#base) throw new Error(this.#configError ?? 'INTERNAL_API_URL is not set');
		if (!path.startsWith('/') || path.startsWith('//')) {
			throw new Error(`API paths start with a single "/" (got ${JSON.stringify(path)})`);
		}
		// Relative to the base, so a base with a path prefix keeps it.
		return new URL(path.slice(1), this.#base);
	}

	get<T>(path: string): Promise<ApiResult<T>> {
		return this.request<T>('GET', path);
	}

	post<T>(path: string, body?: unknown): Promise<ApiResult<T>> {
		return this.request<T>('POST', path, body);
	}

	async request<T>(method: string, path: string, body?: unknown): Promise<ApiResult<T>> {
		if (!this.#base) return networkError(this.#configError ?? 'INTERNAL_API_URL is not set');
		const url = this.url(path);
		const headers: Record<string, string> = { Accept: 'application/json' };
		if (this.token) headers.Authorization = `Token ${this.token}`;
		// Set, never appended to: whatever the browser sent is not passed on.
		if (this.clientAddress) headers['X-Forwarded-For'] = this.clientAddress;
		if (this.requestId) headers['X-Request-ID'] = this.requestId;
		if (body !== undefined) headers['Content-Type'] = 'application/json';

		let response: Response;
		let text: string;
		try {
			response = await this.#fetch(url, {
				method,
				headers,
				body: body === undefined ? undefined : JSON.stringify(body),
				redirect: 'manual',
				signal: AbortSignal.timeout(this.timeoutMs)
			});
			text = await response.text();
		} catch (error) {
			return networkError(describeFailure(error, url, this.timeoutMs));
		}

		const json = parseJson(text);
		if (response.status >= 200 && response.status < 300) {
			if (text !== '' && json === INVALID) {
				return httpError(response, null, 'The API answered with a body that is not JSON');
			}
			return { ok: true, status: response.status, data: (json === INVALID ? null : json) as T };
		}
		return httpError(response, json === INVALID ? null : json);
	}
}

export function createApiClient(options: ApiClientOptions): ApiClient {
	return new ApiClient(options);
}

const INVALID = Symbol('invalid JSON');

function parseJson(text: string): unknown {
	if (text === '') return INVALID;
	try {
		return JSON.parse(text);
	} catch {
		return INVALID;
	}
}

function parseBaseUrl(value: string | undefined): { url: URL | null; error: string | null } {
	if (!value) return { url: null, error: 'INTERNAL_API_URL is not set' };
	let url: URL;
	try {
		url = new URL(value.endsWith('/') ? value : `${value}/`);
	} catch {
		return { url: null, error: `INTERNAL_API_URL is not a URL: ${JSON.stringify(value)}` };
	}
	if (url.protocol !== 'http:' && url.protocol !== 'https:') {
		return { url: null, error: `INTERNAL_API_URL must be http(s): ${JSON.stringify(value)}` };
	}
	return { url, error: null };
}

function networkError(detail: string): ApiNetworkError {
	return { ok: false, kind: 'network', status: 0, detail };
}

function describeFailure(error: unknown, url: URL, timeoutMs: number): string {
	const where = `the API at ${url.origin}`;
	if (error instanceof Error && (error.name === 'TimeoutError' || error.name === 'AbortError')) {
		return `${where} did not answer within ${timeoutMs} ms`;
	}
	// Node's fetch says "fetch failed" and puts the reason (ECONNREFUSED,
	// ENOTFOUND, ...) in `cause`.
	const cause =
		error instanceof Error ? (error.cause as { code?: string; message?: string }) : null;
	const reason =
		cause?.code ?? cause?.message ?? (error instanceof Error ? error.message : String(error));
	return `cannot reach ${where}: ${reason}`;
}

function httpError(response: Response, body: unknown, detail?: string): ApiHttpError {
	const result: ApiHttpError = {
		ok: false,
		kind: 'http',
		status: response.status,
		detail: detail ?? null,
		fieldErrors: {},
		nonFieldErrors: [],
		body
	};
	if (body && typeof body === 'object' && !Array.isArray(body)) {
		for (const [key, value] of Object.entries(body)) {
			if (key === 'detail' && typeof value === 'string') result.detail ??= value;
			else if (key === 'non_field_errors') result.nonFieldErrors.push(...messages(value));
			else if (response.status === 400) result.fieldErrors[key] = messages(value);
		}
	} else if (Array.isArray(body)) {
		result.nonFieldErrors.push(...messages(body));
	}
	if (result.detail === null && body === null) {
		result.detail = `The API answered HTTP ${response.status}${response.statusText ? ` ${response.statusText}` : ''}`;
	}
	return result;
}

/** DRF error values: a string, a list of strings, or nested objects of those. */
function messages(value: unknown): string[] {
	if (typeof value === 'string') return [value];
	if (Array.isArray(value)) return value.flatMap(messages);
	if (value && typeof value === 'object') {
		return Object.entries(value).flatMap(([key, inner]) =>
			messages(inner).map((message) => `${key}: ${message}`)
		);
	}
	return value === null || value === undefined ? [] : [String(value)];
}
