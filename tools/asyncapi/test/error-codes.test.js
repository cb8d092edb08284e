// Every error code the server can send is in protocol.md's table and in
// asyncapi.yaml's ErrorCode enum, and the check catches each kind of drift.
'use strict';

const test = require('node:test');
const assert = require('node:assert');
const { checkErrorCodes, rustCodes, docCodes } = require('../error-codes');

const RUST = `
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    BadRequest,
    NotFound,
}
impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::BadRequest => "bad_request",
            ErrorCode::NotFound => "not_found",
        }
    }
}`;
const ERRORS = `
impl Error {
    pub fn code(&self) -> ErrorCode {
        match self {
            Error::BadRequest(_) => ErrorCode::BadRequest,
            Error::NotFound(_) | Error::Gone(_) => ErrorCode::NotFound,
        }
    }
}`;
const MD = `## 6. Error codes

| Code | Meaning | Retry? |
|---|---|---|
| \`bad_request\` | Bad. | No. |
| \`not_found\` | Gone. | No. |

## 7. Close codes
| \`internal\` | not in section 6 | |
`;
const SPEC = 'components:\n  schemas:\n    ErrorCode:\n      type: string\n      enum: [bad_request, not_found]\n';

test('the repository: every code of ErrorCode is in protocol.md and asyncapi.yaml, and nothing else', () => {
  assert.deepStrictEqual(checkErrorCodes(), []);
});

test('the Rust enum is read with its wire names', () => {
  assert.deepStrictEqual(rustCodes(RUST), { codes: ['bad_request', 'not_found'], problems: [] });
  assert.deepStrictEqual(docCodes(MD), ['bad_request', 'not_found']);
  assert.deepStrictEqual(checkErrorCodes({ rust: RUST, errors: ERRORS, md: MD, spec: SPEC }), []);
});

test('a new server code missing from both documents is caught', () => {
  const rust = RUST.replace('    NotFound,\n', '    NotFound,\n    Gone,\n')
    .replace('ErrorCode::NotFound => "not_found",', 'ErrorCode::NotFound => "not_found",\n            ErrorCode::Gone => "gone",');
  const p = checkErrorCodes({ rust, errors: ERRORS.replace('ErrorCode::NotFound,', 'ErrorCode::NotFound,\n            Error::Teapot => ErrorCode::Gone,'), md: MD, spec: SPEC });
  assert.strictEqual(p.length, 2, p.join('\n'));
  assert.match(p[0], /protocol\.md section 6 lacks error code `gone`/);
  assert.match(p[1], /asyncapi\.yaml ErrorCode lacks error code `gone`/);
});

test('a documented code the server never sends is caught', () => {
  const md = MD.replace('| `not_found` |', '| `teapot` | Short and stout. | No. |\n| `not_found` |');
  const p = checkErrorCodes({ rust: RUST, errors: ERRORS, md, spec: SPEC.replace('not_found]', 'not_found, teapot]') });
  assert.deepStrictEqual(p, [
    'protocol.md section 6 lists error code `teapot`, which the server never sends',
    'asyncapi.yaml ErrorCode lists error code `teapot`, which the server never sends',
  ]);
});

test('a code the error mapping never produces is caught', () => {
  const p = checkErrorCodes({ rust: RUST, errors: ERRORS.replace(' => ErrorCode::NotFound', ' => ErrorCode::BadRequest'), md: MD, spec: SPEC });
  assert.deepStrictEqual(p, ['ErrorCode `not_found`: src/error.rs never maps an error to it']);
});

test('as_str disagreeing with the serde name, or a missing table, is caught', () => {
  const p = checkErrorCodes({ rust: RUST.replace('=> "not_found"', '=> "notfound"'), errors: ERRORS, md: '# nothing', spec: SPEC });
  assert.ok(p.some((x) => /as_str says "notfound", serde sends "not_found"/.test(x)), p.join('\n'));
  assert.ok(p.some((x) => /no "## 6\. Error codes" section/.test(x)), p.join('\n'));
});
