"""The GraphQL API: types built from domain objects, resolvers over the services, and the
schema with its guards and error presentation."""
