// The reference C libyaml (Debian libyaml-dev; the runtime needs libyaml-0-2): its event
// parser, which the YAML target turns into a node tree.
#ifndef KSCALER_CYAML_SHIM_H
#define KSCALER_CYAML_SHIM_H
#include <yaml.h>
#endif
