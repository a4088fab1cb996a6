// Candid known-answer vectors for the ICRC-1/2 ledger adapter (califusion.ledger.icp),
// produced with DFINITY's reference JavaScript implementation (@dfinity/candid).
//
// Usage (from this folder, after `npm ci`): `npm run vectors`, which runs
//   1. node make_vectors.mjs > ../../tests/ledger/icp/vectors.json
//   2. ../../.venv/bin/python ../../tests/ledger/icp/vectors.py > ours.tmp.json
//   3. node make_vectors.mjs --ours ours.tmp.json > ../../tests/ledger/icp/vectors.json
//
// Step 1 records, for every vector, the reference encoding (`hex`) of `value` under `type`.
// Step 3 additionally decodes OUR encoding of every call argument (made by the Python codec in
// step 2) with the reference decoder, fails unless it gives back exactly `value`, and records it
// as `ours_hex` so the Python tests notice any change to our bytes.
//
// JSON form of values: nat/int/nat64 are decimal strings (they may exceed 2^53), nat8 is a
// number, blob is {"blob": hex}, principal is {"principal": text}, opt is [] or [value],
// a variant is {"Case": payload} with null for a case without payload.

import { readFileSync } from "node:fs";
import { IDL } from "@dfinity/candid";
import { Principal } from "@dfinity/principal";

// --- the types, as in dfinity/ic rs/ledger_suite/icrc1/ledger/ledger.did ---------------------

const Blob = IDL.Vec(IDL.Nat8);
const Subaccount = Blob;
const Timestamp = IDL.Nat64;
const Account = IDL.Record({ owner: IDL.Principal, subaccount: IDL.Opt(Subaccount) });
const TransferArg = IDL.Record({
  from_subaccount: IDL.Opt(Subaccount),
  to: Account,
  amount: IDL.Nat,
  fee: IDL.Opt(IDL.Nat),
  memo: IDL.Opt(Blob),
  created_at_time: IDL.Opt(Timestamp),
});
const TransferError = IDL.Variant({
  BadFee: IDL.Record({ expected_fee: IDL.Nat }),
  BadBurn: IDL.Record({ min_burn_amount: IDL.Nat }),
  InsufficientFunds: IDL.Record({ balance: IDL.Nat }),
  TooOld: IDL.Null,
  CreatedInFuture: IDL.Record({ ledger_time: Timestamp }),
  TemporarilyUnavailable: IDL.Null,
  Duplicate: IDL.Record({ duplicate_of: IDL.Nat }),
  GenericError: IDL.Record({ error_code: IDL.Nat, message: IDL.Text }),
});
const TransferResult = IDL.Variant({ Ok: IDL.Nat, Err: TransferError });
const ApproveArgs = IDL.Record({
  fee: IDL.Opt(IDL.Nat),
  memo: IDL.Opt(Blob),
  from_subaccount: IDL.Opt(Blob),
  created_at_time: IDL.Opt(Timestamp),
  amount: IDL.Nat,
  expected_allowance: IDL.Opt(IDL.Nat),
  expires_at: IDL.Opt(Timestamp),
  spender: Account,
});
const ApproveError = IDL.Variant({
  GenericError: IDL.Record({ message: IDL.Text, error_code: IDL.Nat }),
  TemporarilyUnavailable: IDL.Null,
  Duplicate: IDL.Record({ duplicate_of: IDL.Nat }),
  BadFee: IDL.Record({ expected_fee: IDL.Nat }),
  AllowanceChanged: IDL.Record({ current_allowance: IDL.Nat }),
  CreatedInFuture: IDL.Record({ ledger_time: Timestamp }),
  TooOld: IDL.Null,
  Expired: IDL.Record({ ledger_time: Timestamp }),
  InsufficientFunds: IDL.Record({ balance: IDL.Nat }),
});
const ApproveResult = IDL.Variant({ Ok: IDL.Nat, Err: ApproveError });
const TransferFromArgs = IDL.Record({
  spender_subaccount: IDL.Opt(Subaccount),
  from: Account,
  to: Account,
  amount: IDL.Nat,
  fee: IDL.Opt(IDL.Nat),
  memo: IDL.Opt(Blob),
  created_at_time: IDL.Opt(Timestamp),
});
const TransferFromError = IDL.Variant({
  BadFee: IDL.Record({ expected_fee: IDL.Nat }),
  BadBurn: IDL.Record({ min_burn_amount: IDL.Nat }),
  InsufficientFunds: IDL.Record({ balance: IDL.Nat }),
  InsufficientAllowance: IDL.Record({ allowance: IDL.Nat }),
  TooOld: IDL.Null,
  CreatedInFuture: IDL.Record({ ledger_time: Timestamp }),
  Duplicate: IDL.Record({ duplicate_of: IDL.Nat }),
  TemporarilyUnavailable: IDL.Null,
  GenericError: IDL.Record({ error_code: IDL.Nat, message: IDL.Text }),
});
const TransferFromResult = IDL.Variant({ Ok: IDL.Nat, Err: TransferFromError });
const AllowanceArgs = IDL.Record({ account: Account, spender: Account });
const Allowance = IDL.Record({ allowance: IDL.Nat, expires_at: IDL.Opt(Timestamp) });
// A newer ledger might add a field; a Candid decoder must skip it (record subtyping).
const AllowanceWithExtraField = IDL.Record({
  allowance: IDL.Nat,
  expires_at: IDL.Opt(Timestamp),
  zz_added_later: IDL.Text,
});
const MetadataValue = IDL.Variant({
  Nat: IDL.Nat,
  Int: IDL.Int,
  Text: IDL.Text,
  Blob: Blob,
});
const Metadata = IDL.Vec(IDL.Tuple(IDL.Text, MetadataValue));
const StandardRecord = IDL.Record({ url: IDL.Text, name: IDL.Text });

const TYPES = {
  "()": [],
  Account: [Account],
  TransferArg: [TransferArg],
  ApproveArgs: [ApproveArgs],
  TransferFromArgs: [TransferFromArgs],
  AllowanceArgs: [AllowanceArgs],
  TransferResult: [TransferResult],
  ApproveResult: [ApproveResult],
  TransferFromResult: [TransferFromResult],
  Allowance: [Allowance],
  AllowanceWithExtraField: [AllowanceWithExtraField],
  nat: [IDL.Nat],
  nat8: [IDL.Nat8],
  text: [IDL.Text],
  "opt Account": [IDL.Opt(Account)],
  "vec record { text; MetadataValue }": [Metadata],
  "vec StandardRecord": [IDL.Vec(StandardRecord)],
};

// --- fixed inputs -------------------------------------------------------------------------------

// ICRC.md's account-text owner, and two short opaque principals.
const OWNER = Principal.fromText("k2t6j-2nvnp-4zjm3-25dtz-6xhaa-c7boj-5gayf-oj3xs-i43lp-teztq-6ae");
const ALICE = Principal.fromUint8Array(new Uint8Array(10).fill(0xa1));
const BOB = Principal.fromUint8Array(new Uint8Array(10).fill(0xb0));
const SUB_1 = Uint8Array.from({ length: 32 }, (_, i) => (i === 31 ? 1 : 0));
const SUB_SEQ = Uint8Array.from({ length: 32 }, (_, i) => i + 1);
const MEMO = new TextEncoder().encode("job:7f3a/reward");
const MEMO_32 = new Uint8Array(32).fill(0xee);
const BIG = 2n ** 64n + 12345n; // a nat beyond 64 bits
const HUGE = 2n ** 128n - 1n;
const T0 = 1_750_000_000_000_000_000n; // 2025-06-15, ns
const NAT64_MAX = 2n ** 64n - 1n;

const acct = (owner, subaccount) => ({ owner, subaccount: subaccount ? [subaccount] : [] });

const vectors = [];
const add = (name, kind, type, value) => vectors.push({ name, kind, type, value });

// --- call arguments -----------------------------------------------------------------------------

add("no_args", "arg", "()", []);
add("balance_of.default", "arg", "Account", [acct(OWNER)]);
add("balance_of.subaccount", "arg", "Account", [acct(OWNER, SUB_SEQ)]);

const transferBase = {
  from_subaccount: [],
  to: acct(BOB),
  amount: 100_000_000n,
  fee: [],
  memo: [],
  created_at_time: [],
};
add("transfer_arg.minimal", "arg", "TransferArg", [transferBase]);
add("transfer_arg.from_subaccount", "arg", "TransferArg", [{ ...transferBase, from_subaccount: [SUB_1] }]);
add("transfer_arg.to_subaccount", "arg", "TransferArg", [{ ...transferBase, to: acct(OWNER, SUB_SEQ) }]);
add("transfer_arg.fee", "arg", "TransferArg", [{ ...transferBase, fee: [10_000n] }]);
add("transfer_arg.memo", "arg", "TransferArg", [{ ...transferBase, memo: [MEMO] }]);
add("transfer_arg.empty_memo", "arg", "TransferArg", [{ ...transferBase, memo: [new Uint8Array(0)] }]);
add("transfer_arg.created_at_time", "arg", "TransferArg", [{ ...transferBase, created_at_time: [T0] }]);
add("transfer_arg.zero_amount", "arg", "TransferArg", [{ ...transferBase, amount: 0n }]);
add("transfer_arg.big_amount", "arg", "TransferArg", [{ ...transferBase, amount: BIG }]);
add("transfer_arg.all_fields", "arg", "TransferArg", [
  {
    from_subaccount: [SUB_SEQ],
    to: acct(ALICE, SUB_1),
    amount: HUGE,
    fee: [BIG],
    memo: [MEMO_32],
    created_at_time: [NAT64_MAX],
  },
]);

const approveBase = {
  fee: [],
  memo: [],
  from_subaccount: [],
  created_at_time: [],
  amount: 5_000_000n,
  expected_allowance: [],
  expires_at: [],
  spender: acct(ALICE),
};
add("approve_args.minimal", "arg", "ApproveArgs", [approveBase]);
add("approve_args.from_subaccount", "arg", "ApproveArgs", [{ ...approveBase, from_subaccount: [SUB_1] }]);
add("approve_args.spender_subaccount", "arg", "ApproveArgs", [{ ...approveBase, spender: acct(ALICE, SUB_SEQ) }]);
add("approve_args.expected_allowance", "arg", "ApproveArgs", [{ ...approveBase, expected_allowance: [0n] }]);
add("approve_args.expires_at", "arg", "ApproveArgs", [{ ...approveBase, expires_at: [T0 + 3_600_000_000_000n] }]);
add("approve_args.fee", "arg", "ApproveArgs", [{ ...approveBase, fee: [10_000n] }]);
add("approve_args.memo", "arg", "ApproveArgs", [{ ...approveBase, memo: [MEMO] }]);
add("approve_args.created_at_time", "arg", "ApproveArgs", [{ ...approveBase, created_at_time: [T0] }]);
add("approve_args.big_amount", "arg", "ApproveArgs", [{ ...approveBase, amount: BIG }]);
add("approve_args.all_fields", "arg", "ApproveArgs", [
  {
    fee: [10_000n],
    memo: [MEMO_32],
    from_subaccount: [SUB_SEQ],
    created_at_time: [T0],
    amount: HUGE,
    expected_allowance: [BIG],
    expires_at: [NAT64_MAX],
    spender: acct(OWNER, SUB_1),
  },
]);

const transferFromBase = {
  spender_subaccount: [],
  from: acct(ALICE),
  to: acct(BOB),
  amount: 250_000n,
  fee: [],
  memo: [],
  created_at_time: [],
};
add("transfer_from_args.minimal", "arg", "TransferFromArgs", [transferFromBase]);
add("transfer_from_args.spender_subaccount", "arg", "TransferFromArgs", [{ ...transferFromBase, spender_subaccount: [SUB_1] }]);
add("transfer_from_args.from_subaccount", "arg", "TransferFromArgs", [{ ...transferFromBase, from: acct(ALICE, SUB_SEQ) }]);
add("transfer_from_args.fee", "arg", "TransferFromArgs", [{ ...transferFromBase, fee: [10_000n] }]);
add("transfer_from_args.memo", "arg", "TransferFromArgs", [{ ...transferFromBase, memo: [MEMO] }]);
add("transfer_from_args.created_at_time", "arg", "TransferFromArgs", [{ ...transferFromBase, created_at_time: [T0] }]);
add("transfer_from_args.big_amount", "arg", "TransferFromArgs", [{ ...transferFromBase, amount: BIG }]);
add("transfer_from_args.all_fields", "arg", "TransferFromArgs", [
  {
    spender_subaccount: [SUB_SEQ],
    from: acct(OWNER, SUB_1),
    to: acct(ALICE, SUB_SEQ),
    amount: HUGE,
    fee: [BIG],
    memo: [MEMO_32],
    created_at_time: [NAT64_MAX],
  },
]);

add("allowance_args.default", "arg", "AllowanceArgs", [{ account: acct(ALICE), spender: acct(BOB) }]);
add("allowance_args.subaccounts", "arg", "AllowanceArgs", [
  { account: acct(ALICE, SUB_1), spender: acct(OWNER, SUB_SEQ) },
]);

// --- replies ------------------------------------------------------------------------------------

const errors = {
  BadFee: { expected_fee: 10_000n },
  BadBurn: { min_burn_amount: BIG },
  InsufficientFunds: { balance: 42n },
  InsufficientAllowance: { allowance: 9_999n },
  TooOld: null,
  CreatedInFuture: { ledger_time: T0 },
  Duplicate: { duplicate_of: 17n },
  TemporarilyUnavailable: null,
  GenericError: { error_code: 500n, message: "ledger is upgrading ✓" },
  AllowanceChanged: { current_allowance: 7n },
  Expired: { ledger_time: NAT64_MAX },
};
const cases = {
  TransferResult: ["BadFee", "BadBurn", "InsufficientFunds", "TooOld", "CreatedInFuture", "Duplicate", "TemporarilyUnavailable", "GenericError"],
  ApproveResult: ["BadFee", "InsufficientFunds", "AllowanceChanged", "Expired", "TooOld", "CreatedInFuture", "Duplicate", "TemporarilyUnavailable", "GenericError"],
  TransferFromResult: ["BadFee", "BadBurn", "InsufficientFunds", "InsufficientAllowance", "TooOld", "CreatedInFuture", "Duplicate", "TemporarilyUnavailable", "GenericError"],
};
const prefix = { TransferResult: "transfer_result", ApproveResult: "approve_result", TransferFromResult: "transfer_from_result" };
for (const [type, names] of Object.entries(cases)) {
  add(`${prefix[type]}.Ok`, "reply", type, [{ Ok: 1234n }]);
  add(`${prefix[type]}.Ok.big`, "reply", type, [{ Ok: BIG }]);
  for (const name of names) {
    add(`${prefix[type]}.Err.${name}`, "reply", type, [{ Err: { [name]: errors[name] } }]);
  }
}

add("nat.zero", "reply", "nat", [0n]);
add("nat.balance", "reply", "nat", [123_456_789n]);
add("nat.big", "reply", "nat", [HUGE]);
add("nat8.decimals", "reply", "nat8", [8]);
add("text.symbol", "reply", "text", ["CFT"]);
add("text.name", "reply", "text", ["CaliFusion Token ✓"]);
add("allowance.none", "reply", "Allowance", [{ allowance: 0n, expires_at: [] }]);
add("allowance.expiring", "reply", "Allowance", [{ allowance: BIG, expires_at: [T0] }]);
add("allowance.extra_field", "reply", "AllowanceWithExtraField", [
  { allowance: 5n, expires_at: [NAT64_MAX], zz_added_later: "ignored" },
]);
add("minting_account.none", "reply", "opt Account", [[]]);
add("minting_account.owner", "reply", "opt Account", [[acct(OWNER)]]);
add("minting_account.subaccount", "reply", "opt Account", [[acct(OWNER, SUB_1)]]);
add("metadata.ledger", "reply", "vec record { text; MetadataValue }", [
  [
    ["icrc1:decimals", { Nat: 8n }],
    ["icrc1:name", { Text: "CaliFusion Token" }],
    ["icrc1:symbol", { Text: "CFT" }],
    ["icrc1:fee", { Nat: 10_000n }],
    ["icrc1:max_memo_length", { Nat: 32n }],
    ["example:int", { Int: -5n }],
    ["example:blob", { Blob: new Uint8Array([0xca, 0xfe]) }],
  ],
]);
add("metadata.empty", "reply", "vec record { text; MetadataValue }", [[]]);
add("supported_standards.icrc1_icrc2", "reply", "vec StandardRecord", [
  [
    { name: "ICRC-1", url: "https://github.com/dfinity/ICRC-1/tree/main/standards/ICRC-1" },
    { name: "ICRC-2", url: "https://github.com/dfinity/ICRC-1/tree/main/standards/ICRC-2" },
  ],
]);

// --- encode, self-check, print ------------------------------------------------------------------

const hex = (bytes) => Buffer.from(bytes).toString("hex");
const unhex = (text) => new Uint8Array(Buffer.from(text, "hex"));

function toJson(value) {
  if (typeof value === "bigint") return value.toString();
  if (value instanceof Uint8Array) return { blob: hex(value) };
  if (value instanceof Principal) return { principal: value.toText() };
  if (Array.isArray(value)) return value.map(toJson);
  if (value === null || typeof value !== "object") return value;
  return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, toJson(v)]));
}

// Key order is not significant (the decoder returns record fields in field-id order).
function sortKeys(value) {
  if (Array.isArray(value)) return value.map(sortKeys);
  if (value === null || typeof value !== "object") return value;
  return Object.fromEntries(Object.keys(value).sort().map((k) => [k, sortKeys(value[k])]));
}
const canonical = (value) => JSON.stringify(sortKeys(toJson(value)));

const candidVersion = JSON.parse(
  readFileSync(new URL("./node_modules/@dfinity/candid/package.json", import.meta.url), "utf8"),
).version;
const oursPath = process.argv[2] === "--ours" ? process.argv[3] : null;
const ours = oursPath ? JSON.parse(readFileSync(oursPath, "utf8")) : null;

const out = [];
for (const { name, kind, type, value } of vectors) {
  const types = TYPES[type];
  const bytes = new Uint8Array(IDL.encode(types, value));
  const roundTrip = IDL.decode(types, bytes);
  if (canonical(roundTrip) !== canonical(value)) {
    throw new Error(`${name}: reference round trip differs`);
  }
  const entry = { name, kind, type, hex: hex(bytes), value: toJson(value.length === 1 ? value[0] : value) };
  if (ours && kind === "arg") {
    const oursHex = ours[name];
    if (typeof oursHex !== "string") throw new Error(`${name}: missing from ${oursPath}`);
    const decoded = IDL.decode(types, unhex(oursHex));
    if (canonical(decoded) !== canonical(value)) {
      throw new Error(`${name}: the reference decoder reads our bytes as ${canonical(decoded)}`);
    }
    entry.ours_hex = oursHex;
  }
  out.push(entry);
}

const header = {
  generator: "tools/candid-vectors/make_vectors.mjs",
  reference: `@dfinity/candid ${candidVersion} (IDL.encode / IDL.decode)`,
  ours_checked: ours !== null,
  vectors: out,
};
process.stdout.write(JSON.stringify(header, null, 1) + "\n");
