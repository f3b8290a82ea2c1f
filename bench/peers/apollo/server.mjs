// The benchmark's Apollo peer: Apollo Server 5 (standalone) and the MongoDB Node driver,
// answering persona(id) and personas(metadataFilter, first, after) from the repository's
// schema.graphql over the same collection, with the queries personas/store.py sends: the
// tenant condition last in every filter, newest first with ties by id, the tenant field
// projected away, and the same opaque cursors (so that the two servers' answers compare
// equal). Other fields of the schema answer "not served by the benchmark peer".
//
// Environment: MONGODB_URI, PERSONAS_DB_NAME (personas), BENCH_APOLLO_PORT (required),
// BENCH_APOLLO_HOST (127.0.0.1), BENCH_APOLLO_TENANT (default), PERSONAS_DB_TIMEOUT_MS (5000),
// PERSONAS_INDEXED_PATHS (comma-separated, like the server's).

import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { ApolloServer } from '@apollo/server';
import { startStandaloneServer } from '@apollo/server/standalone';
import { GraphQLError, GraphQLScalarType, buildSchema, valueFromASTUntyped } from 'graphql';
import { MongoClient, ObjectId } from 'mongodb';

const HERE = dirname(fileURLToPath(import.meta.url));
const SCHEMA_PATH = process.env.BENCH_APOLLO_SCHEMA ?? join(HERE, '..', '..', '..', 'schema.graphql');
const TENANT = process.env.BENCH_APOLLO_TENANT ?? 'default';
const TIMEOUT_MS = Number(process.env.PERSONAS_DB_TIMEOUT_MS ?? 5000);
const INDEXED = [
  ...new Set(
    ['tags', ...(process.env.PERSONAS_INDEXED_PATHS ?? '').split(',')]
      .map((path) => path.trim())
      .filter(Boolean)
      .map((path) => `metadata.${path}`),
  ),
];

// The limits of personas/domain.py that these two queries check.
const PATH_MAX_SEGMENTS = 16;
const KEY_MAX = 256;
const METADATA_MAX_DEPTH = 20;
const FILTERS_MAX = 20;
const LIST_VALUES_MAX = 100;
const PAGE_MAX = 100;
const PAGE_DEFAULT = 20;
const INT64_MAX = 2n ** 63n - 1n;
const LIST_OPERATORS = new Set(['in', 'nin', 'all']);
const RANGE_OPERATORS = new Set(['gt', 'gte', 'lt', 'lte']);
const HINTED_OPERATORS = new Set(['all', 'prefix']);
const OBJECT_ID = /^[0-9a-f]{24}$/;

function invalid(field, message) {
  return new GraphQLError(`${field}: ${message}`, { extensions: { code: 'BAD_USER_INPUT', field } });
}

// -- Scalars ----------------------------------------------------------------------------

const pad = (number, width = 2) => String(number).padStart(width, '0');

/** A UTC Date as Python's datetime.isoformat() writes it (strawberry's DateTime). */
function isoformat(date) {
  const seconds =
    `${pad(date.getUTCFullYear(), 4)}-${pad(date.getUTCMonth() + 1)}-${pad(date.getUTCDate())}` +
    `T${pad(date.getUTCHours())}:${pad(date.getUTCMinutes())}:${pad(date.getUTCSeconds())}`;
  const millis = date.getUTCMilliseconds();
  return `${seconds}${millis ? `.${pad(millis, 3)}000` : ''}+00:00`;
}

const ISO = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,6}))?(Z|[+-]\d{2}:\d{2})$/;

/** The inverse of isoformat: a timestamp with an offset, to the millisecond. */
function parseIsoformat(text) {
  const match = typeof text === 'string' ? ISO.exec(text) : null;
  if (match === null) throw new TypeError('not a timestamp with an offset');
  const [, year, month, day, hour, minute, second, fraction = '', offset] = match;
  let millis = Date.UTC(+year, +month - 1, +day, +hour, +minute, +second, +fraction.padEnd(3, '0').slice(0, 3));
  if (offset !== 'Z') {
    const sign = offset[0] === '-' ? -1 : 1;
    millis -= sign * (+offset.slice(1, 3) * 60 + +offset.slice(4, 6)) * 60_000;
  }
  return new Date(millis);
}

const DateTime = new GraphQLScalarType({
  name: 'DateTime',
  serialize: (value) => isoformat(value),
  parseValue: (value) => parseIsoformat(value),
  parseLiteral: (ast) => parseIsoformat(ast.value),
});

const JSONScalar = new GraphQLScalarType({
  name: 'JSON',
  serialize: (value) => value,
  parseValue: (value) => value,
  parseLiteral: (ast, variables) => valueFromASTUntyped(ast, variables),
});

// -- Domain rules (personas/domain.py) ----------------------------------------------------

function parseId(raw, field = 'id') {
  const value = String(raw).trim().toLowerCase();
  if (!OBJECT_ID.test(value)) throw invalid(field, 'not a valid persona id (24 hexadecimal characters)');
  return value;
}

function validatePath(path, field) {
  if (typeof path !== 'string') throw invalid(field, 'path must be a string');
  const segments = path.split('.');
  if (segments.length > PATH_MAX_SEGMENTS) throw invalid(field, `path has more than ${PATH_MAX_SEGMENTS} segments`);
  for (const segment of segments) {
    if (!segment) throw invalid(field, `path '${path}' has an empty segment`);
    if (segment.length > KEY_MAX) throw invalid(field, `path segments must be at most ${KEY_MAX} characters`);
    if (segment.startsWith('$')) throw invalid(field, `path segment '${segment}' must not start with '$'`);
    if (segment.includes('\0')) throw invalid(field, 'path must not contain NUL');
  }
  return `metadata.${path}`;
}

/** A user value: JSON without `$`-prefixed keys, within the depth and integer limits. */
function checkValue(value, field, depth = 1) {
  if (depth > METADATA_MAX_DEPTH) throw invalid(field, `nesting deeper than ${METADATA_MAX_DEPTH} levels`);
  if (Array.isArray(value)) {
    value.forEach((item, index) => checkValue(item, `${field}.${index}`, depth + 1));
  } else if (value !== null && typeof value === 'object') {
    for (const [key, item] of Object.entries(value)) {
      if (key.startsWith('$')) throw invalid(field, `key '${key}' must not start with '$'`);
      checkValue(item, `${field}.${key}`, depth + 1);
    }
  } else if (typeof value === 'number') {
    if (!Number.isFinite(value)) throw invalid(field, 'numbers must be finite');
    if (Number.isInteger(value) && BigInt(Math.abs(value)) > INT64_MAX) throw invalid(field, 'integers must fit in 64 bits');
  }
  return value;
}

const escapeRegex = (text) => text.replace(/[.*+?^${}()|[\]\\/-]/g, '\\$&');

function condition(spec, field) {
  const stored = validatePath(spec.path, field);
  const op = spec.op.toLowerCase();
  let value = spec.value ?? null;
  if (LIST_OPERATORS.has(op)) {
    if (!Array.isArray(value) || value.length === 0) throw invalid(field, `${spec.op} takes a non-empty list`);
    if (value.length > LIST_VALUES_MAX) throw invalid(field, `${spec.op} takes at most ${LIST_VALUES_MAX} values`);
  } else if (op === 'exists') {
    if (value === null) value = true;
    if (typeof value !== 'boolean') throw invalid(field, 'EXISTS takes true or false');
  } else if (RANGE_OPERATORS.has(op)) {
    if (typeof value !== 'number' && typeof value !== 'string') throw invalid(field, `${spec.op} takes a number or a string`);
  } else if (op === 'prefix' && (typeof value !== 'string' || !value)) {
    throw invalid(field, 'PREFIX takes a non-empty string');
  }
  return { field: stored, op, value: checkValue(value, `${field}.value`) };
}

function toMongo({ field, op, value }) {
  if (op === 'prefix') return { [field]: { $regex: `^${escapeRegex(value)}` } };
  return { [field]: { [`$${op}`]: value } };
}

/** AND clauses into one flat filter; a repeated field goes to $and (domain.merge). */
function merge(clauses) {
  const merged = {};
  const rest = [];
  for (const clause of clauses) {
    if (Object.keys(clause).some((key) => key in merged)) rest.push(clause);
    else Object.assign(merged, clause);
  }
  if (rest.length) merged.$and = [...(merged.$and ?? []), ...rest];
  return merged;
}

/** Every query pins the tenant, last (store.PersonaStore._scoped). */
const scoped = (...clauses) => merge([...clauses, { tenant: TENANT }]);

/** JSON with object keys sorted, compact: what orjson.dumps(..., OPT_SORT_KEYS) writes. */
function sortedJson(value) {
  if (Array.isArray(value)) return `[${value.map(sortedJson).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const keys = Object.keys(value).sort();
    return `{${keys.map((key) => `${JSON.stringify(key)}:${sortedJson(value[key])}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

const DEFAULT_ORDER = [['created_at', true]];

function fingerprint(conditions) {
  const described = [conditions.map((item) => [item.field, item.op, item.value]), [], null, DEFAULT_ORDER];
  return createHash('sha256').update(sortedJson(described)).digest('hex').slice(0, 16);
}

const pack = (payload) => Buffer.from(JSON.stringify(payload)).toString('base64url');

function encodeCursor(print, document) {
  return pack([print, [isoformat(document.created_at)], String(document._id)]);
}

function decodeCursor(raw, print, field = 'after') {
  let decoded;
  try {
    const [given, values, personaId] = JSON.parse(Buffer.from(raw, 'base64url').toString('utf8'));
    if (!Array.isArray(values) || values.length !== DEFAULT_ORDER.length) throw new TypeError('values');
    decoded = { given, createdAt: parseIsoformat(values[0]), id: parseId(personaId, field) };
  } catch {
    throw invalid(field, 'not a valid cursor');
  }
  if (decoded.given !== print) throw invalid(field, 'this cursor belongs to a listing with another filter or order');
  return decoded;
}

function pageSize(first, field = 'first') {
  if (first === null || first === undefined) return PAGE_DEFAULT;
  if (first < 1 || first > PAGE_MAX) throw invalid(field, `must be between 1 and ${PAGE_MAX}`);
  return first;
}

function persona(document) {
  return {
    id: String(document._id),
    name: document.name,
    content: document.content,
    metadata: document.metadata ?? null,
    version: document.version ?? 1,
    createdAt: document.created_at,
    updatedAt: document.updated_at ?? document.created_at,
  };
}

// -- Resolvers ----------------------------------------------------------------------------

const PROJECTION = { tenant: false };
const SERVED = {
  Query: new Set(['persona', 'personas']),
};

function resolvers(collection) {
  return {
    DateTime,
    JSON: JSONScalar,
    Query: {
      async persona(_, { id }) {
        const document = await collection.findOne(scoped({ _id: new ObjectId(parseId(id)) }), {
          projection: PROJECTION,
        });
        return document === null ? null : persona(document);
      },
      async personas(_, { metadataFilter, metadataFilterAny, search, orderBy, first, after }) {
        if (metadataFilterAny != null || search != null || orderBy != null) {
          throw invalid('personas', 'the benchmark peer serves metadataFilter, first and after only');
        }
        const specs = metadataFilter ?? [];
        if (specs.length > FILTERS_MAX) throw invalid('metadataFilter', `at most ${FILTERS_MAX} filters are allowed`);
        const conditions = specs.map((spec, index) => condition(spec, `metadataFilter.${index}`));
        const size = pageSize(first);
        const print = fingerprint(conditions);
        const cursor = after == null ? null : decodeCursor(after, print);
        const filter = scoped(...conditions.map(toMongo));
        const hinted = conditions.find((item) => INDEXED.includes(item.field) && HINTED_OPERATORS.has(item.op));
        const options = hinted ? { hint: { tenant: 1, [hinted.field]: 1, created_at: -1, _id: -1 } } : {};
        const pipeline = [{ $match: filter }];
        if (cursor !== null) {
          const position = new ObjectId(cursor.id);
          pipeline.push({
            $match: {
              $or: [{ created_at: { $lt: cursor.createdAt } }, { created_at: { $eq: cursor.createdAt }, _id: { $lt: position } }],
            },
          });
        }
        pipeline.push({ $sort: { created_at: -1, _id: -1 } }, { $limit: size + 1 }, { $project: PROJECTION });
        const documents = await collection.aggregate(pipeline, options).toArray();
        const items = documents.slice(0, size);
        const nodes = items.map(persona);
        const cursors = items.map((document) => encodeCursor(print, document));
        return {
          edges: nodes.map((node, index) => ({ cursor: cursors[index], node })),
          nodes,
          pageInfo: { hasNextPage: documents.length > size, endCursor: cursors.at(-1) ?? null },
          totalCount: () => collection.countDocuments(filter, options),
        };
      },
    },
  };
}

/** Every root field the peer does not serve answers with an error saying so. */
function unserved(typeDefs, served) {
  const schema = buildSchema(typeDefs);
  const result = {};
  for (const root of [schema.getQueryType(), schema.getMutationType(), schema.getSubscriptionType()]) {
    if (!root) continue;
    result[root.name] = {};
    for (const name of Object.keys(root.getFields())) {
      if (served[root.name]?.has(name)) continue;
      result[root.name][name] = () => {
        throw new GraphQLError(`${name} is not served by the benchmark peer`, { extensions: { code: 'NOT_SERVED' } });
      };
    }
  }
  result.Persona = {
    revisions: () => {
      throw new GraphQLError('revisions are not served by the benchmark peer', { extensions: { code: 'NOT_SERVED' } });
    },
  };
  return result;
}

async function main() {
  const uri = process.env.MONGODB_URI;
  const port = Number(process.env.BENCH_APOLLO_PORT);
  if (!uri || !port) throw new Error('set MONGODB_URI and BENCH_APOLLO_PORT');
  const client = new MongoClient(uri, {
    serverSelectionTimeoutMS: TIMEOUT_MS,
    connectTimeoutMS: TIMEOUT_MS,
    appName: 'personas-bench-apollo',
  });
  await client.connect();
  const collection = client.db(process.env.PERSONAS_DB_NAME ?? 'personas').collection('personas');
  const typeDefs = readFileSync(SCHEMA_PATH, 'utf8');
  const served = resolvers(collection);
  const missing = unserved(typeDefs, SERVED);
  const server = new ApolloServer({
    typeDefs,
    resolvers: { ...missing, ...served, Query: { ...missing.Query, ...served.Query } },
    stopOnTerminationSignals: false,
  });
  const { url } = await startStandaloneServer(server, {
    listen: { host: process.env.BENCH_APOLLO_HOST ?? '127.0.0.1', port },
  });
  console.log(`apollo peer at ${url} (database ${process.env.PERSONAS_DB_NAME ?? 'personas'}, tenant ${TENANT})`);
  const stop = async (signal) => {
    console.log(`stopped by ${signal}`);
    await server.stop();
    await client.close();
    process.exit(0);
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
