// Decodes the runner's result channel (see python/runner.py) into a RunOutcome. The channel
// is writable by the script, so nothing in it is trusted: it must be one protocol message whose
// values JSON can carry (finite numbers; the parser already refuses invalid UTF-8 and lone
// surrogates), or the run's answer says it was not.
#pragma once

#include <string>
#include <string_view>

#include "executor/types.hpp"

namespace pysandbox::executor {

enum class ChannelState {
  kEmpty,    // nothing was written
  kDecoded,  // one well-formed message: status, result, message and trace are set
  kInvalid,  // something else; `why` says what
};

struct DecodedChannel {
  ChannelState state = ChannelState::kEmpty;
  std::string why;
};

DecodedChannel decode_runner_result(std::string_view channel, RunOutcome& outcome);

}  // namespace pysandbox::executor
