# Compiler flags as per-target interface libraries, and the functions every module defines its
# targets with, so that each target says which flags it gets instead of inheriting directory-wide
# options (which a target could only drop by editing its directory's properties).
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

# pysandbox_add_library(NAME [PLAIN] SOURCES src... [PUBLIC dep...] [PRIVATE dep...])
#
# A static library NAME with PYSANDBOX_FLAGS, linking the PUBLIC and PRIVATE dependencies. With
# PLAIN, also NAME_plain: the same sources without sanitizers, position-independent, for the
# zygote module; its pysandbox_* dependencies are their _plain twins in turn, so each of them must
# be PLAIN too. Without PYSANDBOX_SANITIZE the two would be compiled identically: NAME_plain is
# then an alias of NAME (every library is position-independent, CMAKE_POSITION_INDEPENDENT_CODE).
function(pysandbox_add_library name)
  cmake_parse_arguments(PARSE_ARGV 1 arg "PLAIN" "" "SOURCES;PUBLIC;PRIVATE")
  if(arg_UNPARSED_ARGUMENTS)
    message(FATAL_ERROR "pysandbox_add_library(${name}): unexpected ${arg_UNPARSED_ARGUMENTS}")
  endif()
  add_library(${name} STATIC ${arg_SOURCES})
  set_target_properties(${name} PROPERTIES POSITION_INDEPENDENT_CODE ON)
  target_link_libraries(${name} PUBLIC ${arg_PUBLIC} PRIVATE ${arg_PRIVATE} ${PYSANDBOX_FLAGS})
  if(NOT arg_PLAIN)
    return()
  endif()
  if(NOT PYSANDBOX_SANITIZE)
    add_library(${name}_plain ALIAS ${name})
    return()
  endif()
  add_library(${name}_plain STATIC ${arg_SOURCES})
  set_target_properties(${name}_plain PROPERTIES POSITION_INDEPENDENT_CODE ON)
  foreach(scope PUBLIC PRIVATE)
    set(deps)
    foreach(dep IN LISTS arg_${scope})
      if(dep MATCHES "^pysandbox_")
        if(NOT TARGET ${dep}_plain)
          message(FATAL_ERROR "pysandbox_add_library(${name} PLAIN): ${dep} has no _plain twin "
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

# pysandbox_add_executable(NAME src...): an executable with PYSANDBOX_FLAGS.
function(pysandbox_add_executable name)
  add_executable(${name} ${ARGN})
  target_link_libraries(${name} PRIVATE ${PYSANDBOX_FLAGS})
endfunction()
