// JSON schema -> GBNF grammar (grammar.h), so constrained decoding emits JSON that parses and
// validates. Covered (JSON Schema 2020-12 / draft-07 keywords):
//   type (one or a list): object, array, string, integer, number, boolean, null
//   object: properties, required (optional ones may be left out), additionalProperties
//   array:  items, minItems, maxItems
//   string: minLength, maxLength (in code points, an escape counting as one)
//   enum, const, anyOf, oneOf, $ref to #/$defs/... or #/definitions/... (recursion allowed)
//   true / {} : any JSON value
// The grammar emits properties in the schema's key order (nlohmann::json sorts keys) and no
// property beyond `properties`, which every schema above accepts. oneOf is emitted as anyOf:
// a text matching two branches would break oneOf, so its branches should be disjoint.
// Whitespace is limited to at most one space after { [ , : so generation cannot idle.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "hanul/base/result.h"

namespace hanul {

// The GBNF text (root rule "root"); an error names the schema path of what is unsupported.
Result<std::string> json_schema_to_grammar(const nlohmann::json& schema);

}  // namespace hanul
