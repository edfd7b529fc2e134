"""Builds packaging/consumer against the created package, through CMakeDeps (the
grayroute::grayroute / grayroute::redis targets) and PkgConfigDeps (grayroute.pc),
and runs both programs."""
import os

from conan import ConanFile
from conan.tools.build import can_run
from conan.tools.cmake import CMake, CMakeDeps, CMakeToolchain, cmake_layout
from conan.tools.gnu import PkgConfigDeps


class GrayrouteTestPackageConan(ConanFile):
    settings = "os", "arch", "compiler", "build_type"
    test_type = "explicit"

    def requirements(self):
        self.requires(self.tested_reference_str)

    def layout(self):
        cmake_layout(self)

    def generate(self):
        with_redis = bool(self.dependencies["grayroute"].options.with_redis)
        toolchain = CMakeToolchain(self)
        toolchain.cache_variables["GRAYROUTE_CONSUMER_REDIS"] = with_redis
        toolchain.cache_variables["GRAYROUTE_CONSUMER_PKG_CONFIG"] = True
        toolchain.user_presets_path = False  # nothing written into the source tree
        toolchain.generate()
        CMakeDeps(self).generate()
        PkgConfigDeps(self).generate()

    def build(self):
        cmake = CMake(self)
        cmake.configure()
        cmake.build()

    def test(self):
        if can_run(self):
            for program in ("grayroute_consumer", "grayroute_consumer_pkgconfig"):
                self.run(os.path.join(self.cpp.build.bindir, "consumer", program), env="conanrun")
