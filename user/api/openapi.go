package api

import _ "embed" // for OpenAPI

// OpenAPI is this API's OpenAPI 3.1 document (openapi.yaml next to this
// file), embedded so that tools and tests read the very document that ships
// with the code; harness/openapi validates responses against it.
//
//go:embed openapi.yaml
var OpenAPI []byte
