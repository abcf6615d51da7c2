# Compiler flags as per-target interface libraries, which every target links (executables:
# ${PYSANDBOX_FLAGS} in their target_link_libraries; libraries: pysandbox_library), instead of
# directory-wide options that a target could only drop by editing its directory's properties.
#
#   pysandbox_warnings    the project's warnings; -Werror only with PYSANDBOX_WERROR
#   pysandbox_hardening   hardening as Debian's dpkg-buildflags would set it (compile and link)
#   pysandbox_sanitizers  AddressSanitizer + UBSan with PYSANDBOX_SANITIZE, otherwise empty

add_library(pysandbox_warnings INTERFACE)
target_compile_options(pysandbox_warnings INTERFACE
  -Wall -Wextra -Wpedantic -Wshadow -Wconversion -Wno-sign-conversion
  -Wno-missing-field-initializers)
# GCC 12 reports Asio's awaitable frames (custom operator new/delete) as mismatched: a known
# false positive for coroutine frames.
if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU")
  target_compile_options(pysandbox_warnings INTERFACE -Wno-mismatched-new-delete)
endif()
if(PYSANDBOX_WERROR)
  target_compile_options(pysandbox_warnings INTERFACE -Werror)
endif()

add_library(pysandbox_hardening INTERFACE)
target_compile_options(pysandbox_hardening INTERFACE
  -fstack-protector-strong -fstack-clash-protection -fcf-protection)
# _FORTIFY_SOURCE needs the optimizer; a Debug build would only get a warning about it.
target_compile_definitions(pysandbox_hardening INTERFACE
  _GLIBCXX_ASSERTIONS $<$<NOT:$<CONFIG:Debug>>:_FORTIFY_SOURCE=2>)
target_link_options(pysandbox_hardening INTERFACE
  -Wl,-z,relro -Wl,-z,now -Wl,-z,noexecstack)

add_library(pysandbox_sanitizers INTERFACE)
if(PYSANDBOX_SANITIZE)
  target_compile_options(pysandbox_sanitizers INTERFACE
    -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined)
  target_link_options(pysandbox_sanitizers INTERFACE -fsanitize=address,undefined)
endif()

# The flags of a target that runs in a sanitized build's processes (the server, the tests).
set(PYSANDBOX_FLAGS pysandbox_warnings pysandbox_hardening pysandbox_sanitizers)
# The flags of code loaded where no sanitizer runtime can run: the zygote module (inside Debian's
# /usr/bin/python3, its sandboxes under RLIMIT_AS, and AddressSanitizer reserves terabytes of
# shadow memory) and the static pysandbox-init.
set(PYSANDBOX_PLAIN_FLAGS pysandbox_warnings pysandbox_hardening)

# pysandbox_library(NAME [PLAIN] [PUBLIC dep...] [PRIVATE dep...])
#
# After add_library(NAME STATIC src...), with every source (the source list stays in the module's
# own add_library): links NAME with PYSANDBOX_FLAGS and its PUBLIC and PRIVATE dependencies. With
# PLAIN, also defines NAME_plain: the same sources without sanitizers, position-independent, for
# the zygote module; its pysandbox_* dependencies are their _plain twins in turn, so each of them
# must be PLAIN too. Without PYSANDBOX_SANITIZE the two would be compiled identically: NAME_plain
# is then an alias of NAME (every library is position-independent, CMAKE_POSITION_INDEPENDENT_CODE).
function(pysandbox_library name)
  cmake_parse_arguments(PARSE_ARGV 1 arg "PLAIN" "" "PUBLIC;PRIVATE")
  if(arg_UNPARSED_ARGUMENTS)
    message(FATAL_ERROR "pysandbox_library(${name}): unexpected ${arg_UNPARSED_ARGUMENTS}")
  endif()
  set_target_properties(${name} PROPERTIES POSITION_INDEPENDENT_CODE ON)
  target_link_libraries(${name} PUBLIC ${arg_PUBLIC} PRIVATE ${arg_PRIVATE} ${PYSANDBOX_FLAGS})
  if(NOT arg_PLAIN)
    return()
  endif()
  if(NOT PYSANDBOX_SANITIZE)
    add_library(${name}_plain ALIAS ${name})
    return()
  endif()
  get_target_property(sources ${name} SOURCES)
  add_library(${name}_plain STATIC ${sources})
  set_target_properties(${name}_plain PROPERTIES POSITION_INDEPENDENT_CODE ON)
  foreach(scope PUBLIC PRIVATE)
    set(deps)
    foreach(dep IN LISTS arg_${scope})
      if(dep MATCHES "^pysandbox_")
        if(NOT TARGET ${dep}_plain)
          message(FATAL_ERROR "pysandbox_library(${name} PLAIN): ${dep} has no _plain twin "
                              "(define it with PLAIN, before ${name})")
        endif()
        set(dep ${dep}_plain)
      endif()
      list(APPEND deps ${dep})
    endforeach()
    target_link_libraries(${name}_plain ${scope} ${deps})
  endforeach()
  target_link_libraries(${name}_plain PRIVATE ${PYSANDBOX_PLAIN_FLAGS})
endfunction()
