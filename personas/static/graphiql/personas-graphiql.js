// Starts GraphiQL on the page that loaded it; everything it needs is served by this server.
(function () {
  "use strict";

  var listPersonas = [
    "# Welcome to the Persona API. Paste your key once in the Headers pane below:",
    '#   {"Authorization": "Bearer pk_..."}',
    "# (on a loopback server without API keys no header is needed).",
    "",
    "query ListPersonas($first: Int, $after: String) {",
    "  personas(",
    '    metadataFilter: [{ path: "tags", value: "prod" }]',
    "    first: $first",
    "    after: $after",
    "  ) {",
    "    totalCount",
    "    nodes { id name version tags metadata updatedAt }",
    "    pageInfo { hasNextPage endCursor }",
    "  }",
    "}",
    "",
  ].join("\n");

  var createPersona = [
    "mutation CreatePersona($input: CreatePersonaInput!) {",
    "  createPersona(input: $input) { id name version tags metadata createdAt }",
    "}",
    "",
  ].join("\n");

  var createVariables = JSON.stringify(
    {
      input: {
        name: "Support Agent v2",
        content: "You are a helpful support agent...",
        metadata: { tags: ["prod", "approved"], version: "2.0.0", status: "production" },
      },
    },
    null,
    2
  );

  var revisions = [
    "query Revisions($id: ID!) {",
    "  personaRevisions(id: $id, first: 10) {",
    "    nodes { version operation actor createdAt metadata }",
    "    pageInfo { hasNextPage endCursor }",
    "  }",
    "}",
    "",
  ].join("\n");

  var root = document.getElementById("graphiql");
  var fetcher = GraphiQL.createFetcher({ url: window.location.pathname });
  var element = React.createElement(GraphiQL, {
    fetcher: fetcher,
    plugins: [GraphiQLPluginExplorer.explorerPlugin()],
    isHeadersEditorEnabled: true,
    shouldPersistHeaders: true,
    defaultEditorToolsVisibility: "headers",
    defaultTabs: [
      { query: listPersonas, variables: '{ "first": 10 }' },
      { query: createPersona, variables: createVariables },
      { query: revisions, variables: '{ "id": "" }' },
    ],
  });
  ReactDOM.createRoot(root).render(element);
})();
