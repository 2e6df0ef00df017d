/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include "sched/spec.h"

/* Shared by the service spec's parts: parsing (spec.c), freeing, copying and
 * comparing (spec-copy.c), and the JSON shown back (spec-output.c). */

/* Frees the labels and leaves l empty. */
void spec_labels_free(struct spec_labels *l);
