// GraphQL Code Generator over the API's published schema (the repository's schema.graphql).
import type { CodegenConfig } from "@graphql-codegen/cli";

// The API's two custom scalars: JSON carries any JSON value (metadata), DateTime an ISO 8601
// string with its UTC offset ("2025-01-15T10:30:00.924000+00:00"; `new Date(...)` reads it).
const JsonValue = "import('../json').JsonValue";

const config: CodegenConfig = {
  schema: "../../schema.graphql",
  documents: ["src/**/*.ts", "!src/gql/**/*"],
  ignoreNoDocuments: false,
  generates: {
    "./src/gql/": {
      preset: "client",
      presetConfig: {
        // src/gql/persisted-documents.json: {sha256: document}, the file
        // PERSONAS_PERSISTED_QUERIES takes; the documents carry their hash.
        persistedDocuments: { mode: "embedHashInDocument", hashAlgorithm: "sha256" },
        fragmentMasking: false,
      },
      config: {
        documentMode: "string",
        strictScalars: true,
        scalars: {
          JSON: { input: JsonValue, output: JsonValue },
          DateTime: { input: "string", output: "string" },
        },
        avoidOptionals: { field: true, inputValue: false, object: true, defaultValue: false },
        enumsAsTypes: true,
        useTypeImports: true,
        skipTypename: true,
      },
    },
  },
};

export default config;
