# The installable library: liblatentforge.so with the C API (latentforge.h) and the C++ API
# (latentforge.hpp), a CMake package (find_package(latentforge) -> latentforge::latentforge) and
# a pkg-config file. Only the API's symbols are exported: the internal library is linked in with
# its symbols hidden (--exclude-libs), so hosts never clash with our internal names.
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

add_library(latentforge_shared SHARED ${LF_API_SOURCES})
set_target_properties(latentforge_shared PROPERTIES
  OUTPUT_NAME latentforge EXPORT_NAME latentforge
  VERSION ${PROJECT_VERSION} SOVERSION ${PROJECT_VERSION_MAJOR}.${PROJECT_VERSION_MINOR}
  CXX_VISIBILITY_PRESET hidden VISIBILITY_INLINES_HIDDEN ON
  INSTALL_RPATH_USE_LINK_PATH ON)  # a LibTorch outside the system paths stays found
target_include_directories(latentforge_shared PUBLIC
  $<BUILD_INTERFACE:${PROJECT_SOURCE_DIR}/src> $<BUILD_INTERFACE:${LF_GENERATED_INCLUDE}>
  $<INSTALL_INTERFACE:${CMAKE_INSTALL_INCLUDEDIR}>)
target_link_libraries(latentforge_shared
  PUBLIC ${TORCH_LIBRARIES}  # the C++ API speaks torch::Tensor
  PRIVATE $<BUILD_INTERFACE:latentforge_lib> -Wl,--exclude-libs,ALL -Wl,--no-undefined)
add_library(latentforge::latentforge ALIAS latentforge_shared)

set(LF_CMAKE_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/latentforge)
install(TARGETS latentforge_shared EXPORT latentforgeTargets
        LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR})
install(TARGETS latentforge RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
install(FILES ${PROJECT_SOURCE_DIR}/src/latentforge/latentforge.h
              ${PROJECT_SOURCE_DIR}/src/latentforge/latentforge.hpp
              ${LF_GENERATED_INCLUDE}/latentforge/version.h
        DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/latentforge)
install(EXPORT latentforgeTargets NAMESPACE latentforge:: DESTINATION ${LF_CMAKE_DIR})
configure_package_config_file(${PROJECT_SOURCE_DIR}/cmake/latentforge-config.cmake.in
  ${PROJECT_BINARY_DIR}/latentforge-config.cmake INSTALL_DESTINATION ${LF_CMAKE_DIR})
# 0.x: minor versions may change the API (docs/library.md), so only the same minor matches.
write_basic_package_version_file(${PROJECT_BINARY_DIR}/latentforge-config-version.cmake
  COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/latentforge-config.cmake
              ${PROJECT_BINARY_DIR}/latentforge-config-version.cmake
        DESTINATION ${LF_CMAKE_DIR})

# pkg-config: the C API needs only -llatentforge; C++ users of latentforge.hpp also need
# LibTorch's headers and libraries, which are written in as this build found them.
set(LF_PC_TORCH_CFLAGS "")
foreach(dir ${TORCH_INCLUDE_DIRS})
  if(NOT dir IN_LIST CMAKE_CXX_IMPLICIT_INCLUDE_DIRECTORIES)  # -isystem /usr/include breaks libstdc++
    string(APPEND LF_PC_TORCH_CFLAGS " -isystem ${dir}")
  endif()
endforeach()
string(APPEND LF_PC_TORCH_CFLAGS " ${TORCH_CXX_FLAGS}")
get_filename_component(LF_TORCH_LIBDIR ${TORCH_LIBRARY} DIRECTORY)
set(LF_PC_TORCH_LIBS "")
if(NOT LF_TORCH_LIBDIR IN_LIST CMAKE_CXX_IMPLICIT_LINK_DIRECTORIES)
  set(LF_PC_TORCH_LIBS " -L${LF_TORCH_LIBDIR} -Wl,-rpath,${LF_TORCH_LIBDIR}")
endif()
foreach(name torch torch_cpu torch_cuda c10 c10_cuda)
  if(EXISTS ${LF_TORCH_LIBDIR}/lib${name}.so)
    string(APPEND LF_PC_TORCH_LIBS " -l${name}")
  endif()
endforeach()
# Relocatable: the prefix is found from the .pc file's own folder, so any --prefix works.
file(RELATIVE_PATH LF_PC_PREFIX_FROM_PCFILEDIR /prefix/${CMAKE_INSTALL_LIBDIR}/pkgconfig /prefix)
configure_file(${PROJECT_SOURCE_DIR}/cmake/latentforge.pc.in ${PROJECT_BINARY_DIR}/latentforge.pc
               @ONLY)
install(FILES ${PROJECT_BINARY_DIR}/latentforge.pc
        DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)
