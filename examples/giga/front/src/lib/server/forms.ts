import type { ApiError } from './api';
import type { FormErrors } from '$lib/types';

export const UNAVAILABLE_MESSAGE = 'The service is unavailable right now. Try again in a moment.';

/** The named text fields of a submitted form, '' when absent. */
export async function readForm<const K extends string>(
	request: Request,
	names: readonly K[]
): Promise<Record<K, string>> {
	const data = await request.formData();
	const values = {} as Record<K, string>;
	for (const name of names) {
		const value = data.get(name);
		values[name] = typeof value === 'string' ? value : '';
	}
	return values;
}

/**
 * A failed API call as form errors: DRF's messages for the form's own fields
 * go next to them, everything else (non_field_errors, detail, fields the form
 * does not have, an unreachable API) is a form-level message.
 */
export function formErrors(error: ApiError, fieldNames: readonly string[]): FormErrors {
	const result: FormErrors = { fields: {}, form: [] };
	if (error.kind === 'network') {
		result.form.push(UNAVAILABLE_MESSAGE);
		return result;
	}
	for (const [field, messages] of Object.entries(error.fieldErrors)) {
		if (fieldNames.includes(field)) result.fields[field] = messages;
		else result.form.push(...messages.map((message) => `${field}: ${message}`));
	}
	result.form.push(...error.nonFieldErrors);
	if (error.detail) result.form.push(error.detail);
	if (error.status >= 500) result.form.splice(0, result.form.length, UNAVAILABLE_MESSAGE);
	if (result.form.length === 0 && Object.keys(result.fields).length === 0) {
		result.form.push(`Unexpected answer from the API (HTTP ${error.status}).`);
	}
	return result;
}

/** HTTP status for fail(): the API's 4xx as is, anything else as 503 or 502. */
export function failStatus(error: ApiError): number {
	if (error.kind === 'network') return 503;
	if (error.status >= 400 && error.status < 500) return error.status;
	return 502;
}
