using System.Reflection;
using System.Runtime.InteropServices;

namespace Lockstep.Backends.Managed.Gemm;

/// <summary>
/// Loads the native BLAS libraries from explicit candidate lists and binds the <c>[LibraryImport]</c> names of
/// <see cref="MklNativeMethods"/> and <see cref="OpenBlasNativeMethods"/> to the handles found, through one
/// assembly-wide <see cref="NativeLibrary.SetDllImportResolver"/>. Each attempt's loader message is kept for the error.
/// </summary>
internal static class NativeLibraries
{
    private static readonly Lock Gate = new();
    private static readonly Dictionary<string, (IntPtr Handle, string Path)> Bound = new(StringComparer.Ordinal);
    private static bool _resolverSet;

    /// <summary>
    /// Opens the first candidate that loads and exports every name in <paramref name="requiredExports"/>;
    /// appends one line per attempt to <paramref name="trace"/>. Returns false when none did.
    /// </summary>
    public static bool TryLoad(IEnumerable<string> candidates, IReadOnlyList<string> requiredExports, List<string> trace,
        out IntPtr handle, out string path)
    {
        foreach (string candidate in candidates)
        {
            IntPtr h;
            try
            {
                h = NativeLibrary.Load(candidate);
            }
            catch (DllNotFoundException e)
            {
                trace.Add($"{candidate}: {LoaderMessage(e)}");
                continue;
            }
            catch (BadImageFormatException e)
            {
                trace.Add($"{candidate}: {LoaderMessage(e)}");
                continue;
            }
            string? missing = requiredExports.FirstOrDefault(name => !NativeLibrary.TryGetExport(h, name, out _));
            if (missing is not null)
            {
                trace.Add($"{candidate}: loaded, but it does not export {missing}");
                continue;
            }
            trace.Add($"{candidate}: loaded");
            handle = h;
            path = candidate;
            return true;
        }
        handle = IntPtr.Zero;
        path = "";
        return false;
    }

    /// <summary>
    /// The dynamic loader's own words (dlerror, one line per file probed), without .NET's advice about strace that
    /// opens every such message.
    /// </summary>
    private static string LoaderMessage(Exception e)
    {
        string[] lines = e.Message.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        return lines.Length > 1 ? string.Join("; ", lines.Skip(1).Distinct()) : e.Message.Trim();
    }

    /// <summary>
    /// Makes <c>[LibraryImport(libraryName)]</c> calls go to <paramref name="handle"/>. A process binds each name once
    /// (the runtime caches resolved entry points), so binding a second, different library under the same name fails.
    /// </summary>
    public static void Bind(string libraryName, IntPtr handle, string path)
    {
        lock (Gate)
        {
            if (!_resolverSet)
            {
                NativeLibrary.SetDllImportResolver(typeof(NativeLibraries).Assembly, Resolve);
                _resolverSet = true;
            }
            if (Bound.TryGetValue(libraryName, out var existing))
            {
                if (existing.Handle != handle)
                {
                    throw new InvalidOperationException(
                        $"'{libraryName}' is already bound to {existing.Path} in this process; it cannot be rebound to {path}");
                }
                return;
            }
            Bound.Add(libraryName, (handle, path));
        }
    }

    private static IntPtr Resolve(string libraryName, Assembly assembly, DllImportSearchPath? searchPath)
    {
        lock (Gate)
        {
            // Zero lets the runtime probe as usual; the providers never call before binding, so that does not happen.
            return Bound.TryGetValue(libraryName, out var bound) ? bound.Handle : IntPtr.Zero;
        }
    }
}
