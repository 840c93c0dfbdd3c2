import { describe, expect, it } from 'vitest';
import type { ApiHttpError } from './api';
import { failStatus, formErrors, readForm, UNAVAILABLE_MESSAGE } from './forms';

function httpError(status: number, parts: Partial<ApiHttpError> = {}): ApiHttpError {
	return {
		ok: false,
		kind: 'http',
		status,
		detail: null,
		fieldErrors: {},
		nonFieldErrors: [],
		body: null,
		...parts
	};
}

describe('formErrors', () => {
	const fields = ['username', 'email', 'password'] as const;

	it('puts field errors next to the fields and the rest on the form', () => {
		const errors = formErrors(
			httpError(400, {
				fieldErrors: {
					password: ['This password is too common.'],
					username: ['A user with that username already exists.'],
					first_name: ['Unexpected.']
				},
				nonFieldErrors: ['Unknown field(s): x']
			}),
			fields
		);
		expect(errors.fields).toEqual({
			password: ['This password is too common.'],
			username: ['A user with that username already exists.']
		});
		expect(errors.form).toEqual(['first_name: Unexpected.', 'Unknown field(s): x']);
	});

	it("shows DRF's detail on the form", () => {
		const errors = formErrors(httpError(400, { detail: 'JSON parse error - x' }), fields);
		expect(errors).toEqual({ fields: {}, form: ['JSON parse error - x'] });
	});

	it('says the service is unavailable when the API is down or failing', () => {
		expect(formErrors({ ok: false, kind: 'network', status: 0, detail: 'x' }, fields)).toEqual({
			fields: {},
			form: [UNAVAILABLE_MESSAGE]
		});
		expect(formErrors(httpError(500, { detail: 'HTML page' }), fields).form).toEqual([
			UNAVAILABLE_MESSAGE
		]);
	});

	it('never returns an error without a message', () => {
		expect(formErrors(httpError(418), fields).form).toEqual([
			'Unexpected answer from the API (HTTP 418).'
		]);
	});
});

describe('failStatus', () => {
	it('keeps 4xx and maps the rest to gateway errors', () => {
		expect(failStatus(httpError(400))).toBe(400);
		expect(failStatus(httpError(500))).toBe(502);
		expect(failStatus({ ok: false, kind: 'network', status: 0, detail: '' })).toBe(503);
	});
});

describe('readForm', () => {
	it('reads the named text fields, empty when missing', async () => {
		const body = new FormData();
		body.set('username', 'ada');
		body.set('extra', 'ignored');
		body.set('password', new Blob(['file']), 'file.txt');
		const request = new Request('http://localhost/login', { method: 'POST', body });
		expect(await readForm(request, ['username', 'password', 'email'])).toEqual({
			username: 'ada',
			password: '',
			email: ''
		});
	});
});
