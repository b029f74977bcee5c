/*
 * Ruby's internal headers that the layout probe reads, in an order they
 * compile in. generate.sh also includes this file alone to test whether
 * a member or constant exists in the tree.
 */
#ifndef RBPROF_PROBE_HEADERS_H
#define RBPROF_PROBE_HEADERS_H

#include "ruby/ruby.h"
#include "ruby/encoding.h"
#include "vm_core.h"
#include "iseq.h"
#include "method.h"
#include "symbol.h"
#include "id.h"
#include "ruby/st.h"
#if __has_include("ractor_core.h")
#include "ractor_core.h"
#endif
#if __has_include("internal/imemo.h")
#include "internal/imemo.h"
#include "internal/class.h"
#else
/* Ruby 2.7 and older define imemo types and RClass in internal.h. */
#include "internal.h"
#endif

/* Definitions that live only in .c files, extracted by generate.sh. */
#include "rbprof-from-c-files.h"

#include <limits.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#endif
