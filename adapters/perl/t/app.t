# Loading apps: the package's own subs are events, imported ones and _private ones are not;
# what cannot load is refused with the reason.
use strict;
use warnings;
use Test::More;
use File::Temp qw(tempdir);
use Cocaine::Worker ();

my $dir = tempdir(CLEANUP => 1);

sub app {
    my ($name, $text) = @_;
    open my $fh, '>', "$dir/$name" or die $!;
    print $fh $text;
    close $fh;
    return "$dir/$name";
}

my $handlers = Cocaine::Worker::load_app(app('good.pl', <<'PERL'));
package Good::App;
use strict;
use POSIX qw(floor);
use Cocaine qw(streaming);
sub echo { $_[0] }
sub _helper { 1 }
streaming 'stream';
sub stream { }
1;
PERL
is_deeply([sort keys %$handlers], ['echo', 'stream'], 'own subs only');
is($handlers->{stream}{streaming}, 1, 'stream is streaming');
is($handlers->{echo}{streaming}, 0, 'echo is plain');

my $main = Cocaine::Worker::load_app(app('main.pl', "sub ping_main_app { 'pong' }\n1;\n"));
ok($main->{ping_main_app}, 'no package: main');

for my $case (
    [app('none.pl', "package Empty;\nour \$x = 1;\n1;\n"), qr/defines no handlers/],
    ["$dir/missing.pl",                                      qr/no such file/],
    [app('syntax.pl', "package Bad;\nsub echo { \n1;\n"),     qr/syntax\.pl line/],
    [app('dies.pl', "package Dies;\ndie qq{at load\\n};\n"),  qr/at load/],
) {
    my ($path, $expect) = @$case;
    ok(!eval { Cocaine::Worker::load_app($path); 1 }, "$path refused");
    like($@, $expect, "$path: reason");
}

done_testing;
