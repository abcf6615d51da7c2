// Boost.JSON compiled into the fuzzer (instead of linking the distribution's library), so that
// its parser is instrumented for coverage too.
#include <boost/json/src.hpp>
