using System.Runtime.InteropServices;
using TorchSharp;

namespace Lockstep.Backends.Torch;

/// <summary>
/// The first touch of libtorch (loading TorchSharp's native glue, with a useful error when that fails), device
/// selection, and the few libtorch settings that TorchSharp does not expose.
/// </summary>
internal static partial class LibTorch
{
#if TORCHSHARP_CPU
    internal const string GlibcxxHint =
        "TorchSharp's native glue needs GLIBCXX_3.4.32 (GCC 13's libstdc++); on older hosts run through ./build.sh, " +
        "which uses a Debian 13 root file system";
#else
    internal const string GlibcxxHint =
        "this build (TorchVariant=cuda) takes libtorch from the machine: put a libtorch 2.10-compatible lib directory " +
        "(e.g. PyTorch's torch/lib) on LD_LIBRARY_PATH; TorchSharp's native glue also needs GLIBCXX_3.4.32 " +
        "(GCC 13's libstdc++). See the README, GPU";
#endif

    /// <summary>The libtorch version this TorchSharp was built against, e.g. "2.10.0".</summary>
    internal static string Version => torch.NormalizeNuGetVersion(torch.__version__);

    /// <summary>
    /// The version of the libtorch in the process, read from its build settings (at::show_config(), "TORCH_VERSION=…"):
    /// with TorchVariant=cuda it is the machine's (PyTorch 2.11's, say), which TorchSharp's own version string does not
    /// tell. Null where libtorch does not export show_config with the C++11 string ABI, or says no version.
    /// </summary>
    internal static string? LoadedVersion => _loadedVersion.Value;

    private static readonly Lazy<string?> _loadedVersion = new(ReadLoadedVersion);

    private static unsafe string? ReadLoadedVersion()
    {
        IntPtr library;
        try
        {
            library = LoadTorchCpu("read its version");
        }
        catch (InvalidOperationException)
        {
            return null;
        }
        // std::string at::show_config() (C++11 ABI): returned through a hidden pointer to 32 bytes { char* data;
        // size_t length; char local[16] }; a string longer than 15 characters lives on the heap, freed by operator delete.
        if (!NativeLibrary.TryGetExport(library, "_ZN2at11show_configB5cxx11Ev", out IntPtr showConfig)) return null;
        byte* result = stackalloc byte[32];
        ((delegate* unmanaged<byte*, IntPtr>)showConfig)(result);
        IntPtr data = *(IntPtr*)result;
        long length = *(long*)(result + 8);
        string config = length is > 0 and < 1 << 20 ? Marshal.PtrToStringUTF8(data, (int)length) : "";
        if (data != (IntPtr)(result + 16) && NativeLibrary.TryLoad("libstdc++.so.6", out IntPtr libstdcxx)
            && NativeLibrary.TryGetExport(libstdcxx, "_ZdlPv", out IntPtr operatorDelete))
        {
            ((delegate* unmanaged<IntPtr, void>)operatorDelete)(data);
        }
        var match = System.Text.RegularExpressions.Regex.Match(config, @"TORCH_VERSION=([0-9][^,\s]*)");
        return match.Success ? match.Groups[1].Value : null;
    }

    /// <summary>TorchSharp's package version, read without touching the torch type (whose initializer loads libtorch).</summary>
    private static string TorchSharpVersion =>
        typeof(torch).Assembly.GetCustomAttributes(typeof(System.Reflection.AssemblyInformationalVersionAttribute), false)
            .OfType<System.Reflection.AssemblyInformationalVersionAttribute>().FirstOrDefault()?.InformationalVersion.Split('+')[0]
        ?? typeof(torch).Assembly.GetName().Version?.ToString() ?? "(unknown version)";

    /// <summary>Loads libtorch and TorchSharp's glue, or throws with the loader's own message and the usual fix.</summary>
    internal static void EnsureLoaded()
    {
        try
        {
            BindLibtorchNow();
            torch.InitializeDeviceType(DeviceType.CPU);
        }
        catch (Exception e) when (e is NotSupportedException or DllNotFoundException or TypeInitializationException
                                      or EntryPointNotFoundException or BadImageFormatException)
        {
            // Not Version here: reading torch.__version__ would rerun the failed type initializer.
            throw new InvalidOperationException(
                $"torch: could not load libtorch through TorchSharp {TorchSharpVersion}: {LoaderMessage(e)}. {GlibcxxHint}.", e);
        }
    }

    /// <summary>
    /// Loads libtorch_cpu with every symbol bound at once (RTLD_NOW), before TorchSharp loads it lazily.
    /// libtorch calls OpenMP through its bundled libgomp; once another OpenMP runtime is in the global symbol scope
    /// (MKL's threading layer puts LLVM's libiomp5 there, and it exports the GOMP_* and omp_* names too), lazy
    /// binding sends each libtorch call site to whichever runtime was global when it first ran. A mix (GOMP_parallel
    /// from one, omp_get_thread_num from the other) makes every thread of a parallel region do all the work:
    /// convolutions came out exactly doubled, intermittently, when the managed backend (MKL) shared the process.
    /// Binding all at once makes libtorch use one runtime consistently, whichever loaded first.
    /// </summary>
    private static void BindLibtorchNow()
    {
        if (!OperatingSystem.IsLinux()) return;
        const int RtldNow = 2;
        foreach (string directory in NativeSearchDirectories())
        {
            string path = Path.Combine(directory, "libtorch_cpu.so");
            if (File.Exists(path))
            {
                // Failure is left to TorchSharp's own load, which reports it with its trace.
                DlOpen(path, RtldNow);
                return;
            }
        }
    }

    private static IEnumerable<string> NativeSearchDirectories()
    {
        if (AppContext.GetData("NATIVE_DLL_SEARCH_DIRECTORIES") is string directories)
        {
            foreach (string directory in directories.Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries)) yield return directory;
        }
        // TorchVariant=cuda: libtorch comes from the machine, found through LD_LIBRARY_PATH like TorchSharp finds it.
        if (Environment.GetEnvironmentVariable("LD_LIBRARY_PATH") is string libraryPath)
        {
            foreach (string directory in libraryPath.Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries)) yield return directory;
        }
        string? torchSharp = Path.GetDirectoryName(typeof(torch).Assembly.Location);
        if (!string.IsNullOrEmpty(torchSharp))
        {
            yield return Path.Combine(torchSharp, "runtimes", "linux-x64", "native");
            yield return torchSharp;
        }
    }

    [LibraryImport("libc.so.6", EntryPoint = "dlopen", StringMarshalling = StringMarshalling.Utf8)]
    private static partial IntPtr DlOpen(string path, int flags);

    /// <summary>
    /// TorchSharp's exception lists the paths it tried but not why the dynamic loader refused them;
    /// loading its glue directly once more gives the loader's reason (e.g. "version `GLIBCXX_3.4.32' not found").
    /// </summary>
    private static string LoaderMessage(Exception e)
    {
        try
        {
            NativeLibrary.Load("LibTorchSharp", typeof(torch).Assembly, null);
        }
        catch (DllNotFoundException loader)
        {
            // .NET lists every path it probed; the lines that are not "No such file" are the loader's real reasons.
            string[] reasons = loader.Message.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
                .Skip(1).Where(line => !line.EndsWith("No such file or directory", StringComparison.Ordinal)).ToArray();
            return reasons.Length > 0 ? string.Join("; ", reasons) : loader.Message;
        }
        catch (BadImageFormatException loader)
        {
            return loader.Message;
        }
        Exception inner = e;
        while (inner.InnerException is not null) inner = inner.InnerException;
        string first = inner.Message.Split('\n', StringSplitOptions.RemoveEmptyEntries).FirstOrDefault() ?? inner.GetType().Name;
        return $"{inner.GetType().Name}: {first.Trim()}";
    }

    /// <summary>Resolves "cpu", "cuda", "cuda:N" or "auto" to a device, and says what was picked and why.</summary>
    internal static (torch.Device Device, string Label) SelectDevice(string? requested)
    {
        string name = (requested ?? "cpu").Trim().ToLowerInvariant();
        if (name == "cpu") return (torch.CPU, "cpu");
        if (name == "auto")
        {
            return torch.cuda.is_available()
                ? (torch.CUDA, "cuda, auto: a CUDA device is available")
                : (torch.CPU, $"cpu, auto: no CUDA device ({CudaAbsenceShort})");
        }
        if (name == "cuda" || name.StartsWith("cuda:", StringComparison.Ordinal))
        {
            if (!torch.cuda.is_available())
            {
                throw new InvalidOperationException(
                    $"torch: device '{requested}' was asked for, but no CUDA device is available ({CudaAbsenceReason}); " +
                    "use Lockstep:Torch:Device = cpu, or auto to take a GPU only when there is one");
            }
            if (name == "cuda") return (torch.CUDA, "cuda");
            if (!int.TryParse(name.AsSpan(5), out int index) || index < 0)
            {
                throw new ArgumentException($"torch: device '{requested}': expected cuda:N with N a device index");
            }
            int count = torch.cuda.device_count();
            if (index >= count)
            {
                throw new InvalidOperationException($"torch: device '{requested}' was asked for, but there are only {count} CUDA devices");
            }
            return (torch.device(DeviceType.CUDA, index), $"cuda:{index}");
        }
        throw new ArgumentException($"torch: unknown device '{requested}'; expected cpu, cuda or auto (Lockstep:Torch:Device)");
    }

#if TORCHSHARP_CPU
    private const string CudaAbsenceReason =
        "this build references TorchSharp-cpu, whose libtorch has no CUDA support; build with -p:TorchVariant=cuda on a machine with a driver";
    private const string CudaAbsenceShort = "TorchSharp-cpu build";
#else
    private const string CudaAbsenceReason = "torch.cuda.is_available() is false: no CUDA driver or device was found, or libtorch lacks CUDA";
    private const string CudaAbsenceShort = "torch.cuda.is_available() is false";
#endif

    private static readonly Lock Tf32Gate = new();

    /// <summary>
    /// torch.backends.cuda.matmul.allow_tf32 (cuBLAS) and torch.backends.cudnn.allow_tf32 (cuDNN convolutions), set
    /// both ways and read back: libtorch's own default lets cuDNN use TF32, which conformance must not. Process-wide.
    /// </summary>
    internal static void SetTf32(bool allow)
    {
        lock (Tf32Gate)
        {
            torch.backends.cuda.matmul.allow_tf32 = allow;
            torch.backends.cudnn.allow_tf32 = allow;
            if (torch.backends.cuda.matmul.allow_tf32 != allow || torch.backends.cudnn.allow_tf32 != allow)
            {
                throw new InvalidOperationException($"torch: AllowTF32 = {allow} was asked for, but libtorch did not accept the setting");
            }
        }
    }

    private const string DeterministicSetting = "set Deterministic (TorchSharp 0.107 does not implement torch.use_deterministic_algorithms)";
    private const string CuDnnSetting = "set CuDnn (TorchSharp 0.107 has no torch.backends.cudnn.enabled)";

    /// <summary>
    /// torch.use_deterministic_algorithms(on): TorchSharp 0.107 declares it but throws NotImplementedException,
    /// so the setting is made on libtorch's global context directly (at::globalContext().setDeterministicAlgorithms,
    /// and setDeterministicCuDNN, both exported by libtorch_cpu), and read back. A failure is an error, never ignored.
    /// Process-wide: every backend sets it, so that a default backend clears what a deterministic one set.
    /// </summary>
    internal static unsafe void SetDeterministicAlgorithms(bool on)
    {
        IntPtr library, globalContext, setAlgorithms, setCudnn, getAlgorithms;
        try
        {
            library = LoadTorchCpu(DeterministicSetting);
            globalContext = Export(library, "_ZN2at13globalContextEv", DeterministicSetting);                       // at::globalContext()
            setAlgorithms = Export(library, "_ZN2at7Context26setDeterministicAlgorithmsEbb", DeterministicSetting); // (bool, bool warn_only)
            setCudnn = Export(library, "_ZN2at7Context21setDeterministicCuDNNEb", DeterministicSetting);             // (bool)
            getAlgorithms = Export(library, "_ZNK2at7Context23deterministicAlgorithmsEv", DeterministicSetting);     // () const
        }
        catch (InvalidOperationException) when (!on)
        {
            return; // a libtorch without these exports was never made deterministic: nothing to clear
        }
        // A non-virtual member function takes `this` as its first argument (Itanium C++ ABI); C++ bool is one byte.
        byte flag = on ? (byte)1 : (byte)0;
        IntPtr context = ((delegate* unmanaged<IntPtr>)globalContext)();
        ((delegate* unmanaged<IntPtr, byte, byte, void>)setAlgorithms)(context, flag, 0);
        ((delegate* unmanaged<IntPtr, byte, void>)setCudnn)(context, flag);
        if (((delegate* unmanaged<IntPtr, byte>)getAlgorithms)(context) != flag)
        {
            throw new InvalidOperationException($"torch: Deterministic = {on} was asked for, but libtorch did not accept the setting");
        }
    }

    /// <summary>
    /// torch.backends.cudnn.enabled = enabled, on libtorch's global context (at::globalContext().setUserEnabledCuDNN),
    /// read back. Off, libtorch runs convolutions on CUDA with its own kernels (im2col and cuBLAS) instead of cuDNN's
    /// algorithms. No effect on the CPU. Process-wide, like Deterministic.
    /// </summary>
    internal static unsafe void SetCuDnn(bool enabled)
    {
        IntPtr library, globalContext, set;
        try
        {
            library = LoadTorchCpu(CuDnnSetting);
            globalContext = Export(library, "_ZN2at13globalContextEv", CuDnnSetting);
            set = Export(library, "_ZN2at7Context19setUserEnabledCuDNNEb", CuDnnSetting); // (bool)
        }
        catch (InvalidOperationException) when (enabled)
        {
            return; // libtorch's default: a libtorch without these exports was never told otherwise
        }
        IntPtr context = ((delegate* unmanaged<IntPtr>)globalContext)();
        ((delegate* unmanaged<IntPtr, byte, void>)set)(context, enabled ? (byte)1 : (byte)0);
        if (CuDnnEnabled != enabled)
        {
            throw new InvalidOperationException($"torch: CuDnn = {enabled} was asked for, but libtorch did not accept the setting");
        }
    }

    /// <summary>libtorch's torch.backends.cudnn.enabled, read from its global context.</summary>
    internal static unsafe bool CuDnnEnabled
    {
        get
        {
            IntPtr library = LoadTorchCpu(CuDnnSetting);
            IntPtr globalContext = Export(library, "_ZN2at13globalContextEv", CuDnnSetting);
            IntPtr get = Export(library, "_ZNK2at7Context16userEnabledCuDNNEv", CuDnnSetting); // () const
            IntPtr context = ((delegate* unmanaged<IntPtr>)globalContext)();
            return ((delegate* unmanaged<IntPtr, byte>)get)(context) != 0;
        }
    }

    // purpose: what libtorch_cpu is wanted for, for the error ("set Deterministic (…)").
    private static IntPtr LoadTorchCpu(string purpose)
    {
        if (NativeLibrary.TryLoad("torch_cpu", typeof(torch).Assembly, null, out IntPtr handle)) return handle;
        // With TorchVariant=cuda, TorchSharp loads libtorch from the machine by path; it is in the process already.
        if (NativeLibrary.TryLoad("libtorch_cpu.so", out handle)) return handle;
        throw new InvalidOperationException($"torch: libtorch_cpu could not be found to {purpose}");
    }

    private static IntPtr Export(IntPtr library, string symbol, string purpose) =>
        NativeLibrary.TryGetExport(library, symbol, out IntPtr address)
            ? address
            : throw new InvalidOperationException($"torch: libtorch_cpu does not export {symbol}, needed to {purpose}");

    /// <summary>
    /// Deterministic cuBLAS needs CUBLAS_WORKSPACE_CONFIG in the native environment (libtorch raises an error
    /// otherwise); .NET's Environment.SetEnvironmentVariable does not reach getenv on Unix, so libc's setenv is called.
    /// </summary>
    internal static void SetCublasWorkspaceConfig()
    {
        if (OperatingSystem.IsWindows() || Environment.GetEnvironmentVariable("CUBLAS_WORKSPACE_CONFIG") is not null) return;
        if (SetEnv("CUBLAS_WORKSPACE_CONFIG", ":4096:8", 0) != 0)
        {
            throw new InvalidOperationException("torch: Deterministic = true on CUDA needs CUBLAS_WORKSPACE_CONFIG=:4096:8, and setting it failed");
        }
    }

    [LibraryImport("libc.so.6", EntryPoint = "setenv", StringMarshalling = StringMarshalling.Utf8)]
    private static partial int SetEnv(string name, string value, int overwrite);
}
